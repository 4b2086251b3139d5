// Ollama's generation API: POST /api/chat and /api/generate, streamed as
// NDJSON by default, with Ollama's request fields (options, format, think,
// raw, system, context) and response shapes (message.thinking, tool calls
// with object arguments, nanosecond durations). The request runs like an
// OpenAI one: a scratch sequence of the app, its QoS class and quota.
#include <chrono>

#include "base/error.h"
#include "engine/infill.h"
#include "service/api_ollama.h"
#include "service/completion.h"
#include "service/service.h"
#include "tokenizer/chat_template.h"

namespace onellm {
namespace {

using api::Json;
using Clock = std::chrono::steady_clock;

// Modelfile parameters that change what is sampled and that onellm does not
// implement: refused unless they have their neutral value.
void refuse_unsupported_option(const Json& o, const char* key, double neutral) {
  auto it = o.find(key);
  if (it != o.end() && !it->is_null() && !(it->is_number() && it->get<double>() == neutral))
    throw api::bad_request(std::string("options.") + key + " is not supported by onellm (leave it unset)",
                           std::string("options.") + key);
}

// "think": true / false / "high" | "medium" | "low" (efforts count as true);
// absent: the model's default, and a <think> part is still split off.
enum class Think { kDefault, kOn, kOff };

Think read_think(const Json& body) {
  auto it = body.find("think");
  if (it == body.end() || it->is_null()) return Think::kDefault;
  if (it->is_boolean()) return it->get<bool>() ? Think::kOn : Think::kOff;
  if (it->is_string() && (*it == "high" || *it == "medium" || *it == "low")) return Think::kOn;
  throw api::bad_request("'think' must be true, false, \"high\", \"medium\" or \"low\"", "think");
}

void apply_think(Think think, ChatTemplateOptions& options) {
  if (think != Think::kDefault) add_template_kwargs(options, ChatJson{{"enable_thinking", think == Think::kOn}});
}

// "format": "json" or a JSON schema, as the OpenAI body's response_format
// (so both APIs build the same grammar); "" or null: free text.
Json response_format_of(const Json& body) {
  auto it = body.find("format");
  if (it == body.end() || it->is_null() || (it->is_string() && it->get<std::string>().empty())) return nullptr;
  if (it->is_string() && *it == "json") return {{"type", "json_object"}};
  if (it->is_object()) return {{"type", "json_schema"}, {"json_schema", {{"name", "format"}, {"schema", *it}}}};
  throw api::bad_request("'format' must be \"json\" or a JSON schema object", "format");
}

// Errors of the OpenAI readers name response_format; Ollama's field is format.
template <typename F>
auto with_format_errors(F&& f) {
  try {
    return f();
  } catch (const ServiceError& e) {
    if (e.param.rfind("response_format", 0) != 0) throw;
    throw api::bad_request(std::string("format: ") + e.what(), "format");
  }
}

void refuse_images(const Json& holder, const std::string& field) {
  auto it = holder.find("images");
  if (it != holder.end() && !it->is_null() && !(it->is_array() && it->empty()))
    throw api::bad_request("this model takes no images ('" + field + "')", field);
}

// Ollama's messages -> ChatMessages: "thinking" becomes reasoning_content and
// "tool_name" the tool message's name, as the chat templates read them; tool
// call arguments may be objects (the template layer renders either form).
std::vector<ChatMessage> read_ollama_messages(const Json& body) {
  Json messages = Json::array();
  const Json& in = body["messages"];
  for (size_t i = 0; i < in.size(); ++i) {
    const std::string field = "messages[" + std::to_string(i) + "]";
    if (!in[i].is_object()) throw api::bad_request(field + " must be an object", field);
    refuse_images(in[i], field + ".images");
    Json m = in[i];
    m.erase("images");
    if (auto t = m.find("thinking"); t != m.end()) {
      if (!t->is_null() && !(t->is_string() && t->get<std::string>().empty())) m["reasoning_content"] = *t;
      m.erase("thinking");
    }
    if (m.contains("tool_name") && !m.contains("name")) m["name"] = m["tool_name"];
    messages.push_back(std::move(m));
  }
  return api::read_messages(Json{{"messages", messages}});
}

std::string done_reason(FinishReason f) {
  return f == FinishReason::kMaxTokens || f == FinishReason::kContextFull ? "length" : "stop";
}

// Ollama's logprobs entries: [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}].
Json ollama_logprobs(const std::vector<TokenLogprob>& logprobs, const Tokenizer& tok) {
  auto entry = [&](int32_t id, float lp) { return api::logprob_entry(tok, id, lp); };
  Json out = Json::array();
  for (const TokenLogprob& t : logprobs) {
    Json e = entry(t.token, t.logprob), top = Json::array();
    for (const auto& [id, lp] : t.top) top.push_back(entry(id, lp));
    if (!t.top.empty()) e["top_logprobs"] = top;
    out.push_back(std::move(e));
  }
  return out;
}

// OpenAI tool calls (arguments as JSON text) -> Ollama's (arguments as an object).
Json ollama_tool_calls(const Json& openai_calls) {
  Json out = Json::array();
  for (size_t i = 0; i < openai_calls.size(); ++i) {
    const Json& f = openai_calls[i]["function"];
    Json args = Json::parse(f["arguments"].get<std::string>(), nullptr, false);
    if (args.is_discarded()) args = f["arguments"];
    out.push_back({{"function", {{"index", i}, {"name", f["name"]}, {"arguments", args}}}});
  }
  return out;
}

int64_t nanoseconds(double seconds) { return static_cast<int64_t>(seconds * 1e9); }

}  // namespace

void Service::ollama_generate(const Caller& c, const HttpRequest& rq, HttpResponse& rs, bool chat) {
  const auto t0 = Clock::now();
  check_rate(c);
  Json body = api::parse_body(rq);
  const std::string requested = api::string_field(body, "model", "");
  const std::optional<int64_t> keep_alive = read_keep_alive(body);
  OllamaJob job;
  job.chat = chat;
  job.stream = api::bool_field(body, "stream", true);  // Ollama streams unless told not to
  job.model = requested.empty() ? ollama_model_name(model_name()) : requested;
  auto empty = [&](const char* key) {
    auto it = body.find(key);
    return it == body.end() || it->is_null() || (it->is_string() && it->get<std::string>().empty()) ||
           (it->is_array() && it->empty());
  };
  if (keep_alive == 0 && (chat ? empty("messages") : empty("prompt") && empty("context"))) {
    // `ollama stop`: unloaded once no request uses it (the idle unload), not loaded for this.
    {
      std::lock_guard<std::mutex> lock(model_mu_);
      if (model_) ollama_keep_alive_ms_ = 0;
    }
    return ollama_loaded(job, rs, "unload");
  }
  LoadedModel& m = model();
  // Ollama's rule: each request sets how long the model stays after it (the default when it names none).
  ollama_keep_alive_ms_ = keep_alive.value_or(kConfigKeepAlive);
  const double load_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  job.load_seconds = load_seconds;
  job.t0 = t0;
  read_ollama_options(body, job.request, m.tokenizer->n_vocab());
  const Think think = read_think(body);
  ChatTemplateOptions options;
  apply_think(think, options);

  if (chat) {
    auto msgs = body.find("messages");
    if (msgs != body.end() && !msgs->is_null() && !msgs->is_array())
      throw api::bad_request("'messages' must be an array", "messages");
    if (msgs == body.end() || msgs->is_null() || msgs->empty()) return ollama_loaded(job, rs);  // a load request
    std::vector<ChatMessage> messages = read_ollama_messages(body);
    Json oai = {{"response_format", response_format_of(body)}};
    if (body.contains("tools")) oai["tools"] = body["tools"];
    ChatPrompt chat = with_format_errors(
        [&] { return prepare_chat_prompt(oai, std::move(messages), *m.chat_template, m.chat_defaults, options); });
    job.output = std::move(chat.output);
    job.prompt = chat_prompt_tokens(*m.tokenizer, *m.chat_template, chat.messages, chat.options);
    job.output.apply(job.request);
  } else {
    const std::string prompt = api::string_field(body, "prompt", "");
    refuse_images(body, "images");
    if (!api::string_field(body, "template", "").empty())
      throw api::bad_request("'template' (a Go template) is not supported; onellm renders the model's chat template",
                             "template");
    const std::string suffix = api::string_field(body, "suffix", "");
    std::vector<int32_t> context;
    if (auto ctx = body.find("context"); ctx != body.end() && !ctx->is_null()) {
      if (!ctx->is_array()) throw api::bad_request("'context' must be an array of token ids", "context");
      context = api::read_token_ids(*ctx, m.tokenizer->n_vocab(), "context");
    }
    if (prompt.empty() && context.empty()) return ollama_loaded(job, rs);  // a load request
    const bool raw = api::bool_field(body, "raw", false);
    std::vector<int32_t> turn;
    if (!suffix.empty()) {  // fill-in-the-middle: the prompt is the code before the cursor
      InfillInput in;
      in.prefix = prompt;
      in.suffix = suffix;
      turn = infill_prompt(c, in, job.request.max_tokens, "suffix");
      job.raw = true;
      if (!context.empty() && !turn.empty() && turn.front() == m.tokenizer->bos_id()) turn.erase(turn.begin());
    } else if (raw) {
      turn = m.tokenizer->encode(prompt, context.empty(), true);
    } else {
      std::vector<ChatMessage> messages;
      const std::string system = api::string_field(body, "system", "");
      if (!system.empty()) messages.push_back({"system", system});
      messages.push_back({"user", prompt});
      turn = chat_prompt_tokens(*m.tokenizer, *m.chat_template, messages, options);
      // After an earlier reply's context the BOS is already there.
      if (!context.empty() && !turn.empty() && turn.front() == m.tokenizer->bos_id()) turn.erase(turn.begin());
    }
    job.prompt = std::move(context);
    job.prompt.insert(job.prompt.end(), turn.begin(), turn.end());
    if (job.prompt.empty()) throw api::bad_request("the prompt has no tokens", "prompt");
    Json oai = {{"response_format", response_format_of(body)}};
    job.request.grammar = with_format_errors([&] { return read_text_grammar(oai); });
    job.raw = job.raw || raw;
  }
  if (think != Think::kOff && !job.raw)
    job.reasoning = reasoning_format(m.chat_template->source(), *m.tokenizer, job.prompt);
  if (api::bool_field(body, "logprobs", false))
    job.request.top_logprobs = static_cast<int>(api::int_field(body, "top_logprobs", 0, 0, 20));

  // The model named may be an adapter (as /api/tags lists them); any other name means the base model.
  const std::string base_name = ollama_base_name(requested);
  const SessionAdapter adapter = adapter_named(m, m.adapters.count(base_name) ? base_name : "", "model");
  const QosClass q = qos_for(c, api::string_field(body, "qos", ""));
  check_tokens(c, job.prompt.size(), job.request.max_tokens);
  std::unique_lock<std::mutex> hold;
  std::unique_ptr<SessionLease> lease = scratch_lease(c, job.prompt, q.priority, job.request.max_tokens, adapter, hold);
  run_ollama(*scheduler_, *store_, *c.app, q, lease->sequence(), job, rs);
}

// The answer to a request without a prompt: Ollama's way to load a model.
void ollama_loaded(const OllamaJob& job, HttpResponse& rs, const char* reason) {
  Json done = {{"model", job.model}, {"created_at", api::rfc3339_now()}};
  if (job.chat) done["message"] = {{"role", "assistant"}, {"content", ""}};
  else done["response"] = "";
  done["done"] = true;
  done["done_reason"] = reason;
  api::send_json(rs, 200, done);
}

void run_ollama(QosScheduler& scheduler, SessionStore& store, const AppConfig& app, const QosClass& qos,
                Sequence& seq, OllamaJob& job, HttpResponse& rs) {
  check_context(job.prompt.size(), seq, job.chat ? "messages" : "prompt");
  job.request.prompt = job.prompt;
  const bool want_logprobs = job.request.top_logprobs >= 0;
  const Tokenizer& tok = seq.tokenizer();
  if (job.stream && !rs.start_stream(200, "application/x-ndjson")) return;
  auto line = [&rs](const Json& j) { return rs.write(j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n"); };
  // One response object: the text as message.content / response, the
  // thinking beside it, and log-probabilities of the tokens it carries.
  auto piece = [&](const std::string& content, const std::string& thinking, const std::vector<TokenLogprob>& lps) {
    Json j = {{"model", job.model}, {"created_at", api::rfc3339_now()}};
    if (job.chat) {
      j["message"] = {{"role", "assistant"}, {"content", content}};
      if (!thinking.empty()) j["message"]["thinking"] = thinking;
    } else {
      j["response"] = content;
      if (!thinking.empty()) j["thinking"] = thinking;
    }
    if (want_logprobs && !lps.empty()) j["logprobs"] = ollama_logprobs(lps, tok);
    j["done"] = false;
    return j;
  };

  ScheduledRequest sr = scheduled_request(app, qos, seq, job.request, rs);
  ContentStreamFilter content_filter(job.output.tools_active ? tool_call_triggers(job.output.style)
                                                             : std::vector<std::string>{});
  ReasoningStream reasoning(job.reasoning);
  std::vector<TokenLogprob> unsent;  // until a piece of text carries them
  size_t received = 0;
  auto stream_text = [&](const ReasoningSplit& part) {
    const std::string shown = content_filter.feed(part.content);
    if (shown.empty() && part.reasoning.empty()) return true;
    const bool ok = line(piece(shown, part.reasoning, unsent));
    unsent.clear();
    return ok;
  };
  GenerationResult r;
  try {
    r = scheduler.run(std::move(sr), [&](std::string_view text, const std::vector<TokenLogprob>& logprobs) {
      if (!job.stream) return true;
      received += logprobs.size();
      if (want_logprobs) unsent.insert(unsent.end(), logprobs.begin(), logprobs.end());
      return stream_text(reasoning.feed(text));
    });
  } catch (const ServiceError& e) {
    if (!job.stream) throw;
    line(Json{{"error", e.what()}});  // Ollama's clients read an error line in the stream
    rs.end_stream();
    return;
  }
  if (r.finish == FinishReason::kCancelled) return;  // the client went away
  store.add_usage(app.id, static_cast<int64_t>(job.prompt.size() + r.tokens.size()));

  bool has_calls = false;
  const ReasoningSplit split = split_reasoning(r.text, job.reasoning);
  Json message = job.chat ? assistant_message(job.output, split.content, has_calls) : Json();
  const std::string content = job.chat ? (message["content"].is_string() ? message["content"].get<std::string>() : "")
                                       : split.content;
  Json calls = has_calls ? ollama_tool_calls(message["tool_calls"]) : Json();
  if (job.stream) {
    if (want_logprobs && received < r.logprobs.size())  // tokens whose text came with the end
      unsent.insert(unsent.end(), r.logprobs.begin() + static_cast<std::ptrdiff_t>(received), r.logprobs.end());
    stream_text(reasoning.finish());
    // Content held back while a call might have been starting, then the calls whole.
    const std::string& shown = content_filter.shown();
    const bool held = content.size() > shown.size() && content.compare(0, shown.size(), shown) == 0;
    if (has_calls || held || !unsent.empty()) {
      Json rest = piece(held ? content.substr(shown.size()) : "", "", unsent);
      if (has_calls) rest["message"]["tool_calls"] = calls;
      line(rest);
    }
  }
  Json done = piece(job.stream ? "" : content, job.stream ? "" : split.reasoning,
                    job.stream ? std::vector<TokenLogprob>{} : r.logprobs);
  if (!job.stream && has_calls) done["message"]["tool_calls"] = calls;
  done["done"] = true;
  done["done_reason"] = done_reason(r.finish);
  if (!job.chat) {  // the tokens to pass back as "context" to continue
    std::vector<int32_t> context = job.prompt;
    context.insert(context.end(), r.tokens.begin(), r.tokens.end());
    done["context"] = context;
  }
  done["total_duration"] = nanoseconds(std::chrono::duration<double>(Clock::now() - job.t0).count());
  done["load_duration"] = nanoseconds(job.load_seconds);
  done["prompt_eval_count"] = job.prompt.size();
  done["prompt_eval_duration"] = nanoseconds(r.prompt_seconds);
  done["eval_count"] = r.tokens.size();
  done["eval_duration"] = nanoseconds(r.generate_seconds);
  if (!job.stream) return api::send_json(rs, 200, done);
  line(done);
  rs.end_stream();
}

void read_ollama_options(const Json& body, GenerationRequest& r, int32_t n_vocab) {
  auto it = body.find("options");
  const Json o = it == body.end() || it->is_null() ? Json::object() : *it;
  if (!o.is_object()) throw api::bad_request("'options' must be an object of Modelfile parameters", "options");
  SamplingParams& p = r.sampling;
  // Ollama's defaults, not OpenAI's: its clients expect them.
  p.temperature = static_cast<float>(api::number_field(o, "temperature", 0.8, 0.0, 100.0));
  p.top_k = static_cast<int32_t>(api::int_field(o, "top_k", 40, 0, 1 << 20));
  p.top_p = static_cast<float>(api::number_field(o, "top_p", 0.9, 0.0, 1.0));
  p.min_p = static_cast<float>(api::number_field(o, "min_p", 0.0, 0.0, 1.0));
  p.repeat_penalty = static_cast<float>(api::number_field(o, "repeat_penalty", 1.1, 0.01, 10.0));
  p.repeat_last_n = static_cast<int32_t>(api::int_field(o, "repeat_last_n", 64, -1, 1 << 20));
  p.presence_penalty = static_cast<float>(api::number_field(o, "presence_penalty", 0.0, -2.0, 2.0));
  p.frequency_penalty = static_cast<float>(api::number_field(o, "frequency_penalty", 0.0, -2.0, 2.0));
  const int64_t seed = api::int_field(o, "seed", -1, INT64_MIN, INT64_MAX);
  if (seed >= 0) p.seed = static_cast<uint64_t>(seed);  // negative: a random seed, as in Ollama
  // -1: no limit, -2: until the context is full (the same here).
  const int64_t predict = api::int_field(o, "num_predict", -1, -2, 1 << 20);
  r.max_tokens = predict < 0 ? -1 : predict;
  p.typical_p = static_cast<float>(api::number_field(o, "typical_p", 1.0, 1e-6, 1.0));
  p.mirostat = static_cast<int32_t>(api::int_field(o, "mirostat", 0, 0, 2));
  p.mirostat_tau = static_cast<float>(api::number_field(o, "mirostat_tau", 5.0, 1e-6, 1e6));
  p.mirostat_eta = static_cast<float>(api::number_field(o, "mirostat_eta", 0.1, 0.0, 1e6));
  refuse_unsupported_option(o, "tfs_z", 1);  // tail-free sampling: llama.cpp removed it too
  Json stop = Json::object();
  if (o.contains("stop")) stop["stop"] = o["stop"];
  GenerationRequest with_stop;
  api::read_sampling(stop, with_stop, n_vocab);  // the same checks as OpenAI's "stop"
  r.stop = std::move(with_stop.stop);
}

std::string ollama_model_name(const std::string& name) { return name + ":latest"; }

std::string ollama_base_name(const std::string& requested) {
  const std::string tag = ":latest";
  if (requested.size() > tag.size() && requested.compare(requested.size() - tag.size(), tag.size(), tag) == 0)
    return requested.substr(0, requested.size() - tag.size());
  return requested;
}

}  // namespace onellm
