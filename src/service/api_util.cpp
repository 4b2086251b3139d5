#include "service/api_util.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace onellm::api {

void send_json(HttpResponse& rs, int status, const Json& body) {
  rs.send(status, "application/json", body.dump(-1, ' ', false, Json::error_handler_t::replace));
}

void send_error(HttpResponse& rs, const ServiceError& e) {
  const char* type = e.http_status >= 500 ? "server_error" : "invalid_request_error";
  Json err = {{"message", e.what()}, {"type", type}, {"code", e.code}};
  err["param"] = e.param.empty() ? Json(nullptr) : Json(e.param);
  if (e.retry_after_s > 0) {
    rs.set_header("Retry-After", std::to_string(static_cast<int64_t>(std::ceil(e.retry_after_s))));
    err["retry_after"] = e.retry_after_s;
  }
  if (rs.sent()) return;
  send_json(rs, e.http_status, Json{{"error", err}});
}

bool send_event(HttpResponse& rs, const Json& data) {
  return rs.write("data: " + data.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n\n");
}

Json parse_body(const HttpRequest& rq) {
  if (rq.body.empty()) throw bad_request("the request body is empty; expected a JSON object");
  Json body = Json::parse(rq.body, nullptr, false);
  if (body.is_discarded()) throw bad_request("the request body is not valid JSON");
  if (!body.is_object()) throw bad_request("the request body must be a JSON object");
  return body;
}

double number_field(const Json& body, const char* key, double fallback, double lo, double hi) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return fallback;
  if (!it->is_number()) throw bad_request(std::string("'") + key + "' must be a number", key);
  double v = it->get<double>();
  if (!(v >= lo && v <= hi))
    throw bad_request(std::string("'") + key + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi),
                      key);
  return v;
}

int64_t int_field(const Json& body, const char* key, int64_t fallback, int64_t lo, int64_t hi) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return fallback;
  if (!it->is_number_integer()) throw bad_request(std::string("'") + key + "' must be an integer", key);
  int64_t v = it->get<int64_t>();
  if (v < lo || v > hi)
    throw bad_request(std::string("'") + key + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi),
                      key);
  return v;
}

bool bool_field(const Json& body, const char* key, bool fallback) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) throw bad_request(std::string("'") + key + "' must be true or false", key);
  return it->get<bool>();
}

std::string string_field(const Json& body, const char* key, const std::string& fallback) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return fallback;
  if (!it->is_string()) throw bad_request(std::string("'") + key + "' must be a string", key);
  return it->get<std::string>();
}

// Messages of a request -> ChatMessage list; content may be a string, null or
// a list of text parts.
std::vector<ChatMessage> read_messages(const Json& body) {
  auto it = body.find("messages");
  if (it == body.end() || !it->is_array() || it->empty())
    throw bad_request("'messages' must be a non-empty array", "messages");
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& m = (*it)[i];
    const std::string field = "messages[" + std::to_string(i) + "]";
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      throw bad_request(field + " needs a string 'role'", field + ".role");
    ChatMessage cm;
    cm.role = m["role"].get<std::string>();
    if (cm.role != "system" && cm.role != "user" && cm.role != "assistant" && cm.role != "tool" && cm.role != "developer")
      throw bad_request(field + " has unknown role '" + cm.role + "'", field + ".role");
    cm.null_content = !m.contains("content") || m["content"].is_null();
    if (auto c = m.find("content"); c != m.end() && !c->is_null()) {
      if (c->is_string()) {
        cm.content = c->get<std::string>();
      } else if (c->is_array()) {
        for (const Json& part : *c) {
          const bool text_part = part.is_object() && part.contains("type") && part["type"] == "text" &&
                                 part.contains("text") && part["text"].is_string();
          if (!text_part)
            throw bad_request(field + ".content parts must be {\"type\":\"text\",\"text\":...}", field + ".content");
          cm.content += part["text"].get<std::string>();
        }
      } else {
        throw bad_request(field + ".content must be a string, an array of text parts or null", field + ".content");
      }
    }
    for (const auto& [k, v] : m.items())
      if (k != "role" && k != "content") cm.extra[k] = v;
    out.push_back(std::move(cm));
  }
  return out;
}

void read_template_kwargs(const Json& body, ChatTemplateOptions& options) {
  auto it = body.find("chat_template_kwargs");
  if (it == body.end() || it->is_null()) return;
  try {
    add_template_kwargs(options, ChatJson::parse(it->dump()));
  } catch (const Error& e) {
    throw bad_request(e.what(), "chat_template_kwargs");
  }
}

std::vector<int32_t> read_token_ids(const Json& ids, int32_t n_vocab, const std::string& param) {
  std::vector<int32_t> out;
  for (const Json& id : ids) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= n_vocab)
      throw bad_request("'" + param + "' has an item that is not a token id of this model", param);
    out.push_back(id.get<int32_t>());
  }
  return out;
}

void read_sampling(const Json& body, GenerationRequest& r, int32_t n_vocab) {
  SamplingParams& p = r.sampling;
  // OpenAI defaults: temperature 1, top_p 1, no top-k/min-p unless asked.
  p.temperature = static_cast<float>(number_field(body, "temperature", 1.0, 0.0, 2.0));
  p.top_p = static_cast<float>(number_field(body, "top_p", 1.0, 0.0, 1.0));
  p.top_k = static_cast<int32_t>(int_field(body, "top_k", 0, 0, 1 << 20));
  p.min_p = static_cast<float>(number_field(body, "min_p", 0.0, 0.0, 1.0));
  p.presence_penalty = static_cast<float>(number_field(body, "presence_penalty", 0.0, -2.0, 2.0));
  p.frequency_penalty = static_cast<float>(number_field(body, "frequency_penalty", 0.0, -2.0, 2.0));
  p.repeat_penalty = static_cast<float>(number_field(body, "repeat_penalty", 1.0, 0.01, 10.0));
  // llama-server's further samplers.
  p.typical_p = static_cast<float>(number_field(body, "typical_p", 1.0, 1e-6, 1.0));
  p.xtc_probability = static_cast<float>(number_field(body, "xtc_probability", 0.0, 0.0, 1.0));
  p.xtc_threshold = static_cast<float>(number_field(body, "xtc_threshold", 0.1, 0.0, 1.0));
  p.mirostat = static_cast<int32_t>(int_field(body, "mirostat", 0, 0, 2));
  p.mirostat_tau = static_cast<float>(number_field(body, "mirostat_tau", 5.0, 1e-6, 1e6));
  p.mirostat_eta = static_cast<float>(number_field(body, "mirostat_eta", 0.1, 0.0, 1e6));
  p.top_n_sigma = static_cast<float>(number_field(body, "top_n_sigma", -1.0, -1e6, 1e6));
  p.dry_multiplier = static_cast<float>(number_field(body, "dry_multiplier", 0.0, 0.0, 1e6));
  p.dry_base = static_cast<float>(number_field(body, "dry_base", 1.75, 0.0, 1e6));
  if (p.dry_base < 1.0f) p.dry_base = 1.75f;  // as llama-server: a base below 1 means the default
  p.dry_allowed_length = static_cast<int32_t>(int_field(body, "dry_allowed_length", 2, 0, 1 << 20));
  p.dry_penalty_last_n = static_cast<int32_t>(int_field(body, "dry_penalty_last_n", -1, -1, 1 << 30));
  if (auto it = body.find("dry_sequence_breakers"); it != body.end() && !it->is_null()) {
    if (!it->is_array() || it->empty() || it->size() > 64)
      throw bad_request("'dry_sequence_breakers' must be an array of 1 to 64 strings", "dry_sequence_breakers");
    p.dry_sequence_breakers.clear();
    for (const Json& s : *it) {
      if (!s.is_string())
        throw bad_request("'dry_sequence_breakers' must be an array of strings", "dry_sequence_breakers");
      p.dry_sequence_breakers.push_back(s.get<std::string>());
    }
  }
  // onellm's own: prompt-lookup decoding for this request (0: off; absent: the daemon's --lookup-draft).
  if (body.contains("lookup_draft") && !body["lookup_draft"].is_null())
    r.lookup_draft = static_cast<int32_t>(int_field(body, "lookup_draft", 0, 0, 64));
  if (body.contains("seed") && !body["seed"].is_null())
    p.seed = static_cast<uint64_t>(int_field(body, "seed", 0, 0, INT64_MAX));
  r.ignore_eos = bool_field(body, "ignore_eos", false);  // llama.cpp server extension (benchmarks, tests)
  if (auto it = body.find("stop"); it != body.end() && !it->is_null()) {
    if (it->is_string()) {
      r.stop = {it->get<std::string>()};
    } else if (it->is_array() && it->size() <= 16) {
      for (const Json& s : *it) {
        if (!s.is_string()) throw bad_request("'stop' must be a string or an array of strings", "stop");
        r.stop.push_back(s.get<std::string>());
      }
    } else {
      throw bad_request("'stop' must be a string or an array of up to 16 strings", "stop");
    }
  }
  if (auto it = body.find("logit_bias"); it != body.end() && !it->is_null()) {
    if (!it->is_object()) throw bad_request("'logit_bias' must be an object of token id -> bias", "logit_bias");
    for (const auto& [key, value] : it->items()) {
      char* end = nullptr;
      long id = std::strtol(key.c_str(), &end, 10);
      if (key.empty() || *end != 0 || id < 0 || id >= n_vocab || !value.is_number())
        throw bad_request("'logit_bias' has an invalid entry '" + key + "'", "logit_bias");
      p.logit_bias.emplace_back(static_cast<int32_t>(id), value.get<float>());
    }
  }
}

Json logprob_entry(const Tokenizer& tokenizer, int32_t id, float logprob) {
  const std::string piece = tokenizer.token_to_piece(id, true);
  Json bytes = Json::array();
  for (unsigned char b : piece) bytes.push_back(b);
  return Json{{"token", piece}, {"logprob", logprob}, {"bytes", bytes}};
}

std::string safe_text(const std::string& s) {
  return Json(s).dump(-1, ' ', false, Json::error_handler_t::replace);
}

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string rfc3339_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count() % 1000000000;
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char text[64];
  const size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(text + n, sizeof text - n, ".%09lldZ", static_cast<long long>(ns));
  return text;
}

}  // namespace onellm::api
