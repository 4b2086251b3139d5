// Ollama's model and embedding endpoints: GET /api/tags, /api/ps,
// /api/version, POST /api/show, /api/embed and the older /api/embeddings,
// the routing of /api/*, and Ollama's error shape. The daemon serves one
// model file (and its LoRA adapters), so /api/pull, /api/create and the like
// answer with an error that says so.
#include <sys/stat.h>

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>

#include "base/error.h"
#include "context/context.h"
#include "service/api_ollama.h"
#include "service/reasoning.h"
#include "service/service.h"

namespace onellm {
namespace {

using api::Json;

// "Q4_K - Medium" (llama.cpp's file type names) -> "Q4_K_M", as Ollama shows
// it; without general.file_type, the type that holds most of the weights.
std::string quantization_level(const GgufFile& file) {
  std::string name = file.file_type_name();
  if (name.empty()) {
    std::map<TensorType, int64_t> elements;
    for (const GgufTensor& t : file.tensors())
      if (t.dims.size() >= 2) elements[t.type] += t.n_elements();
    int64_t most = 0;
    for (const auto& [type, n] : elements)
      if (n > most) {
        most = n;
        name = tensor_type_info(type).name;
      }
  }
  if (name == "all F32") return "F32";
  const size_t dash = name.find(" - ");
  if (dash == std::string::npos) return name;
  const std::string size = name.substr(dash + 3);
  if (size == "Small" || size == "Medium" || size == "Large") return name.substr(0, dash) + "_" + size.substr(0, 1);
  return name.substr(0, dash);  // "IQ4_XS - 4.25 bpw"
}

// 494032768 -> "494.03M", 1543714304 -> "1.5B" (Ollama's human numbers).
std::string parameter_size(uint64_t n) {
  char text[32];
  if (n >= 1000000000ull) std::snprintf(text, sizeof text, "%.1fB", static_cast<double>(n) / 1e9);
  else if (n >= 1000000ull) std::snprintf(text, sizeof text, "%.2fM", static_cast<double>(n) / 1e6);
  else std::snprintf(text, sizeof text, "%.2fK", static_cast<double>(n) / 1e3);
  return text;
}

// The scalar metadata of the file (arrays such as the vocabulary as null, as
// Ollama shows them unless asked to be verbose), plus the parameter count.
Json model_info(const Model& model) {
  const GgufFile& file = model.gguf();
  Json info = Json::object();
  for (const std::string& key : file.keys()) {
    if (key == "tokenizer.chat_template") continue;  // shown as "template"
    const GgufValue* v = file.find(key);
    if (v == nullptr) continue;
    if (v->type == GgufType::STRING) info[key] = v->str;
    else if (v->type == GgufType::BOOL) info[key] = v->u != 0;
    else if (v->is_integer()) info[key] = v->as_int();
    else if (v->is_float()) info[key] = v->as_double();
    else info[key] = nullptr;
  }
  info["general.parameter_count"] = model.parameter_count();
  return info;
}

std::string rfc3339_of(std::time_t t) {
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char text[40];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

// Milliseconds of a Go duration such as "1h30m", "5m", "2.5s" or "-1m";
// a plain number is seconds. NaN when it is neither.
double duration_ms(const std::string& text) {
  static const std::map<std::string, double> kUnitMs = {{"ns", 1e-6}, {"us", 1e-3}, {"\u00b5s", 1e-3},
                                                        {"ms", 1},    {"s", 1e3},   {"m", 6e4},  {"h", 3.6e6}};
  size_t i = 0, n = text.size();
  const double sign = n > 0 && text[0] == '-' ? -1 : 1;
  if (n > 0 && (text[0] == '-' || text[0] == '+')) i = 1;
  double total = 0;
  bool any = false;
  while (i < n) {
    const size_t start = i;
    while (i < n && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
    if (i == start || i - start > 30) return NAN;
    char* end = nullptr;
    const std::string number = text.substr(start, i - start);
    const double value = std::strtod(number.c_str(), &end);
    if (end != number.c_str() + number.size()) return NAN;
    const size_t unit_start = i;
    while (i < n && !std::isdigit(static_cast<unsigned char>(text[i])) && text[i] != '.') ++i;
    const std::string unit = text.substr(unit_start, i - unit_start);
    if (unit.empty() && !any && i == n) return sign * value * 1e3;  // "300": seconds
    auto u = kUnitMs.find(unit);
    if (u == kUnitMs.end()) return NAN;
    total += value * u->second;
    any = true;
  }
  return any ? sign * total : NAN;
}

}  // namespace

std::optional<int64_t> read_keep_alive(const Json& body) {
  auto it = body.find("keep_alive");
  if (it == body.end() || it->is_null()) return std::nullopt;
  double ms = NAN;
  if (it->is_number()) ms = it->get<double>() * 1e3;
  else if (it->is_string()) ms = duration_ms(it->get<std::string>());
  if (std::isnan(ms))
    throw api::bad_request("'keep_alive' must be a number of seconds or a duration such as \"5m\" or \"1h30m\"",
                           "keep_alive");
  if (ms < 0) return -1;
  return static_cast<int64_t>(std::min(ms, 1e15));  // ~30 000 years
}

void send_ollama_error(HttpResponse& rs, const ServiceError& e) {
  if (e.retry_after_s > 0)
    rs.set_header("Retry-After", std::to_string(static_cast<int64_t>(std::ceil(e.retry_after_s))));
  if (!rs.sent()) api::send_json(rs, e.http_status, Json{{"error", e.what()}});
}

// What /api/tags, /api/ps and /api/show tell about the model file, taken once
// when it is first loaded (the listing must not load it again).
void Service::remember_model_facts(const LoadedModel& m) {
  if (!model_facts_.is_null()) return;
  const GgufFile& file = m.model->gguf();
  const std::string arch = m.model->config().arch;
  struct stat st {};
  const std::time_t modified = ::stat(options_.model_path.c_str(), &st) == 0 ? st.st_mtime : std::time(nullptr);
  Json details = {{"parent_model", ""}, {"format", "gguf"}, {"family", arch}, {"families", Json::array({arch})},
                  {"parameter_size", parameter_size(m.model->parameter_count())},
                  {"quantization_level", quantization_level(file)}};
  Json capabilities = Json::array({"completion"});
  const std::string& source = m.chat_template->source();
  if (template_renders_tools(source) || !m.chat_defaults.builtin_tools.triggers.empty())
    capabilities.push_back("tools");
  if (source.find("<think>") != std::string::npos) capabilities.push_back("thinking");
  model_facts_ = {{"size", file.file_size()}, {"digest", hex64(m.context->model_hash())},
                  {"modified_at", rfc3339_of(modified)}, {"details", details}, {"template", source},
                  {"capabilities", capabilities}, {"model_info", model_info(*m.model)}};
}

void Service::ollama_api(const Caller& c, const HttpRequest& rq, HttpResponse& rs) {
  const std::string& p = rq.path;
  const bool get = rq.method == "GET" || rq.method == "HEAD", post = rq.method == "POST";
  if (p == "/api/chat" && post) return ollama_generate(c, rq, rs, true);
  if (p == "/api/generate" && post) return ollama_generate(c, rq, rs, false);
  if (p == "/api/embed" && post) return ollama_embed(c, rq, rs, false);
  if (p == "/api/embeddings" && post) return ollama_embed(c, rq, rs, true);
  if (p == "/api/show" && post) return ollama_show(rq, rs);
  if ((p == "/api/tags" || p == "/api/ps") && get) return ollama_tags(rs, p == "/api/ps");
  if (p == "/api/version" && get) return api::send_json(rs, 200, {{"version", ONELLM_VERSION}});
  if (p == "/api/pull" || p == "/api/push" || p == "/api/create" || p == "/api/copy" || p == "/api/delete" ||
      p.rfind("/api/blobs/", 0) == 0)
    throw ServiceError("NOT_SUPPORTED",
                       "onellm serves the one model file it was started with (serve -m FILE); " + p + " is not available",
                       501);
  throw ServiceError("NOT_FOUND", "no route for " + rq.method + " " + p, 404);
}

Json Service::ollama_model_entry(const std::string& name, const std::string& parent) {
  std::lock_guard<std::mutex> lock(model_mu_);
  Json e = {{"name", ollama_model_name(name)}, {"model", ollama_model_name(name)},
            {"modified_at", model_facts_["modified_at"]}, {"size", model_facts_["size"]},
            {"digest", model_facts_["digest"]}, {"details", model_facts_["details"]}};
  if (!parent.empty()) e["details"]["parent_model"] = ollama_model_name(parent);
  return e;
}

// /api/tags: the model and its adapters; /api/ps: the same while loaded,
// with when the idle unload will take them (keep_alive_ms).
void Service::ollama_tags(HttpResponse& rs, bool running) {
  Json models = Json::array();
  bool loaded;
  std::chrono::steady_clock::time_point last_used;
  {
    std::lock_guard<std::mutex> lock(model_mu_);
    loaded = model_ != nullptr;
    last_used = last_used_;
  }
  if (running && !loaded) return api::send_json(rs, 200, {{"models", models}});
  std::vector<std::pair<std::string, std::string>> names = {{model_name(), ""}};
  for (const auto& [name, path] : options_.adapters) names.push_back({name, model_name()});
  const int64_t keep = keep_alive_ms();
  for (const auto& [name, parent] : names) {
    Json e = ollama_model_entry(name, parent);
    if (running) {
      const auto expires = std::chrono::system_clock::now() +
                           std::chrono::duration_cast<std::chrono::system_clock::duration>(
                               last_used + std::chrono::milliseconds(keep) - std::chrono::steady_clock::now());
      // Never unloaded: Ollama writes a far date for that.
      e["expires_at"] = keep >= 0 ? rfc3339_of(std::chrono::system_clock::to_time_t(expires)) : "2318-01-01T00:00:00Z";
      e["size_vram"] = 0;
      e["context_length"] = std::atomic_load(&config_)->default_context;
    }
    models.push_back(std::move(e));
  }
  api::send_json(rs, 200, {{"models", models}});
}

void Service::ollama_show(const HttpRequest& rq, HttpResponse& rs) {
  Json body = api::parse_body(rq);
  std::string name = api::string_field(body, "model", api::string_field(body, "name", ""));
  if (name.empty()) throw api::bad_request("'model' is required", "model");
  name = ollama_base_name(name);
  std::string parent;
  for (const auto& [adapter, path] : options_.adapters)
    if (adapter == name) parent = model_name();
  if (parent.empty() && name != model_name())
    throw ServiceError("NOT_FOUND", "model '" + name + "' not found; this daemon serves " +
                                        ollama_model_name(model_name()), 404, 0, "model");
  Json entry = ollama_model_entry(name, parent);
  std::lock_guard<std::mutex> lock(model_mu_);
  const std::string modelfile = "# Modelfile of onellm serve\nFROM " + options_.model_path + "\n";
  api::send_json(rs, 200, {{"license", ""}, {"modelfile", modelfile}, {"parameters", ""},
                           {"template", model_facts_["template"]}, {"details", entry["details"]},
                           {"model_info", model_facts_["model_info"]}, {"capabilities", model_facts_["capabilities"]},
                           {"modified_at", model_facts_["modified_at"]}});
}

// /api/embed: {"input": text or texts} -> {"embeddings": [unit vectors]};
// /api/embeddings (older): {"prompt": text} -> {"embedding": vector}, not
// normalized, as Ollama returns it. "truncate" (default true) cuts an input
// longer than the context to fit; false makes it an error.
void Service::ollama_embed(const Caller& c, const HttpRequest& rq, HttpResponse& rs, bool legacy) {
  const auto t0 = std::chrono::steady_clock::now();
  check_rate(c);
  Json body = api::parse_body(rq);
  const std::optional<int64_t> keep_alive = read_keep_alive(body);
  LoadedModel& m = model();
  ollama_keep_alive_ms_ = keep_alive.value_or(kConfigKeepAlive);
  const double load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::vector<std::vector<int32_t>> inputs;
  auto add = [&](const Json& text, const char* param) {
    if (!text.is_string()) throw api::bad_request(std::string("'") + param + "' must be a string", param);
    inputs.push_back(m.tokenizer->encode(text.get<std::string>(), true, false));
    if (inputs.back().empty()) throw api::bad_request("an input has no tokens (an empty string?)", param);
  };
  const char* param = legacy ? "prompt" : "input";
  auto in = body.find(param);
  if (in == body.end() || in->is_null()) throw api::bad_request(std::string("'") + param + "' is required", param);
  if (in->is_array() && !legacy && in->size() <= 2048) for (const Json& x : *in) add(x, param);
  else add(*in, param);
  if (inputs.empty()) throw api::bad_request("'input' is empty", "input");
  const Pooling pooling = [&] {
    try {
      return default_pooling(m.model->config());
    } catch (const Error& e) {
      throw api::bad_request(e.what(), "model");
    }
  }();
  const int64_t D = m.model->config().n_embd;
  const int64_t dims = legacy ? D : api::int_field(body, "dimensions", D, 1, D);
  const bool truncate = api::bool_field(body, "truncate", true);
  const QosClass q = qos_for(c, api::string_field(body, "qos", ""));
  size_t total = 0;
  for (const auto& ids : inputs) total += ids.size();
  check_tokens(c, total, 0);
  std::vector<std::vector<float>> vectors;
  size_t evaluated = 0;
  if (!embed_inputs(c, q, inputs, {pooling, !legacy, dims, truncate, param, &evaluated}, rs, vectors)) return;
  if (legacy) return api::send_json(rs, 200, {{"embedding", vectors.front()}});
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string requested = api::string_field(body, "model", "");
  api::send_json(rs, 200, {{"model", requested.empty() ? ollama_model_name(model_name()) : requested},
                           {"embeddings", vectors}, {"total_duration", static_cast<int64_t>(seconds * 1e9)},
                           {"load_duration", static_cast<int64_t>(load_seconds * 1e9)},
                           {"prompt_eval_count", evaluated}});
}

}  // namespace onellm
