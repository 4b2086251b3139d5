// llama-server's own completion endpoints, for its clients (editor plugins
// such as llama.vim, scripts written for llama.cpp): POST /completion (a
// prompt as text or token ids) and POST /infill (fill-in-the-middle for code
// models: input_prefix, input_suffix, input_extra files, prompt). Both answer
// in llama-server's shape: {"content", "stop", "stop_type", "tokens_predicted",
// "tokens_evaluated", "timings"...}, streamed as SSE objects with "stop": false
// until the last. Sampling fields and defaults are llama-server's.
#include "base/error.h"
#include "engine/infill.h"
#include "service/api_util.h"
#include "service/completion.h"
#include "service/output_constraint.h"
#include "service/service.h"
#include "tokenizer/chat_template.h"

namespace onellm {
namespace {

using api::Json;

// llama-server's sampling defaults where the request is silent, then the
// same field readers as the OpenAI API (seed -1 means a random seed there).
void read_native_sampling(Json body, GenerationRequest& r, int32_t n_vocab) {
  auto fallback = [&](const char* key, const Json& value) {
    if (!body.contains(key) || body[key].is_null()) body[key] = value;
  };
  fallback("temperature", 0.8);
  fallback("top_k", 40);
  fallback("top_p", 0.95);
  fallback("min_p", 0.05);
  if (body.contains("seed") && body["seed"].is_number_integer() && body["seed"].get<int64_t>() < 0) body.erase("seed");
  if (body.contains("temperature") && body["temperature"].is_number() && body["temperature"].get<double>() < 0)
    body["temperature"] = 0;  // llama-server: a negative temperature is greedy
  api::read_sampling(body, r, n_vocab);
  r.sampling.repeat_last_n = static_cast<int32_t>(api::int_field(body, "repeat_last_n", 64, -1, 1 << 20));
  const int64_t n_predict = api::int_field(body, "n_predict", api::int_field(body, "max_tokens", -1, -1, 1 << 20),
                                           -1, 1 << 20);
  r.max_tokens = n_predict;
}

const char* stop_type(FinishReason f) {
  switch (f) {
    case FinishReason::kEndOfGeneration: return "eos";
    case FinishReason::kStopString: return "word";
    default: return "limit";
  }
}

// llama-server's completion_probabilities: per token its id, text, bytes
// and log-probability (of the model's own distribution, before sampling),
// with the n_probs most likely tokens alike; with post_sampling_probs,
// "prob" and "top_probs" of the distribution the token was drawn from.
Json completion_probabilities(const Tokenizer& tokenizer, const std::vector<TokenLogprob>& logprobs,
                              bool post_sampling) {
  auto entry_of = [&](int32_t id, float logprob) {
    Json e = api::logprob_entry(tokenizer, id, logprob);
    e["id"] = id;
    if (post_sampling) {
      e.erase("logprob");
      e["prob"] = std::exp(logprob);
    }
    return e;
  };
  Json out = Json::array();
  for (const TokenLogprob& t : logprobs) {
    Json entry = entry_of(t.token, t.logprob);
    Json top = Json::array();
    for (const auto& [id, logprob] : t.top) top.push_back(entry_of(id, logprob));
    entry[post_sampling ? "top_probs" : "top_logprobs"] = std::move(top);
    out.push_back(std::move(entry));
  }
  return out;
}

// A request's settings under llama-server's names: /completion's
// "generation_settings" and /props' default_generation_settings.params.
Json generation_settings(const GenerationRequest& r, int64_t n_ctx) {
  const SamplingParams& p = r.sampling;
  Json bias = Json::array();
  for (const auto& [id, b] : p.logit_bias) bias.push_back({{"token", id}, {"bias", b}});
  return {{"n_predict", r.max_tokens}, {"seed", p.seed}, {"temperature", p.temperature}, {"top_k", p.top_k},
          {"top_p", p.top_p}, {"min_p", p.min_p}, {"top_n_sigma", p.top_n_sigma},
          {"xtc_probability", p.xtc_probability}, {"xtc_threshold", p.xtc_threshold}, {"typical_p", p.typical_p},
          {"repeat_last_n", p.repeat_last_n < 0 ? n_ctx : p.repeat_last_n}, {"repeat_penalty", p.repeat_penalty},
          {"presence_penalty", p.presence_penalty}, {"frequency_penalty", p.frequency_penalty},
          {"dry_multiplier", p.dry_multiplier}, {"dry_base", p.dry_base}, {"dry_allowed_length", p.dry_allowed_length},
          {"dry_penalty_last_n", p.dry_penalty_last_n < 0 ? n_ctx : p.dry_penalty_last_n},
          {"dry_sequence_breakers", p.dry_sequence_breakers}, {"mirostat", p.mirostat},
          {"mirostat_tau", p.mirostat_tau}, {"mirostat_eta", p.mirostat_eta}, {"stop", r.stop},
          {"max_tokens", r.max_tokens}, {"ignore_eos", r.ignore_eos}, {"logit_bias", bias},
          {"n_probs", std::max(0, r.top_logprobs)}, {"post_sampling_probs", r.post_sampling_probs},
          {"samplers", {"penalties", "dry", "top_n_sigma", "top_k", "typ_p", "top_p", "min_p", "xtc", "temperature"}}};
}

// The context a request of this app runs in (its scratch sequence's).
int64_t context_of(const Caller& c, const Model& model) {
  return std::min(c.context_tokens(), model.config().n_ctx_train);
}

// A budget for an infill prompt: the context less room for the middle (the
// request's max tokens, at most half the context; a quarter when unbounded).
int64_t infill_budget(int64_t n_ctx, int64_t max_tokens) {
  const int64_t reserve = max_tokens > 0 ? std::min(max_tokens, n_ctx / 2) : n_ctx / 4;
  return std::max<int64_t>(1, n_ctx - std::max<int64_t>(1, reserve));
}

}  // namespace

std::vector<int32_t> Service::infill_prompt(const Caller& c, const InfillInput& input, int64_t max_tokens,
                                            const char* param) {
  LoadedModel& m = model();
  try {
    return infill_tokens(*m.tokenizer, input, infill_budget(context_of(c, *m.model), max_tokens));
  } catch (const Error& e) {
    throw api::bad_request(e.what(), param);
  }
}

void Service::native_completion(const Caller& c, const HttpRequest& rq, HttpResponse& rs, bool infill) {
  check_rate(c);
  Json body = api::parse_body(rq);
  LoadedModel& m = model();
  GenerationRequest request;
  read_native_sampling(body, request, m.tokenizer->n_vocab());
  request.grammar = read_text_grammar(body);
  const int64_t n_probs = api::int_field(body, "n_probs", 0, 0, 100);
  const bool return_tokens = api::bool_field(body, "return_tokens", false);
  const bool stream = api::bool_field(body, "stream", false);
  // A streamed chunk's tokens come with its log-probabilities (top 0: only the token's own).
  if (n_probs > 0 || (return_tokens && stream)) request.top_logprobs = static_cast<int32_t>(n_probs);
  request.post_sampling_probs = api::bool_field(body, "post_sampling_probs", false);
  std::vector<int32_t> prompt;
  if (infill) {
    InfillInput in;
    in.prefix = api::string_field(body, "input_prefix", "");
    in.suffix = api::string_field(body, "input_suffix", "");
    in.prompt = api::string_field(body, "prompt", "");
    if (auto extra = body.find("input_extra"); extra != body.end() && !extra->is_null()) {
      if (!extra->is_array())
        throw api::bad_request("'input_extra' must be an array of {filename, text}", "input_extra");
      for (const Json& chunk : *extra) {
        if (!chunk.is_object()) throw api::bad_request("'input_extra' items must be {filename, text}", "input_extra");
        in.extra.push_back({api::string_field(chunk, "filename", "tmp"), api::string_field(chunk, "text", "")});
      }
    }
    prompt = infill_prompt(c, in, request.max_tokens, "input_prefix");
  } else {
    auto p = body.find("prompt");
    if (p != body.end() && p->is_array() && p->size() == 1 && !p->front().is_number()) p = p->begin();
    if (p == body.end() || !(p->is_string() || (p->is_array() && !p->empty())))
      throw api::bad_request("'prompt' must be a string or token ids", "prompt");
    prompt = p->is_string() ? m.tokenizer->encode(p->get<std::string>(), true, true)
                            : api::read_token_ids(*p, m.tokenizer->n_vocab(), "prompt");
    if (prompt.empty()) throw api::bad_request("the prompt is empty and the model adds no BOS token", "prompt");
  }
  const QosClass q = qos_for(c, api::string_field(body, "qos", ""));
  check_tokens(c, prompt.size(), request.max_tokens);
  std::unique_lock<std::mutex> hold;
  std::unique_ptr<SessionLease> lease =
      scratch_lease(c, prompt, q.priority, request.max_tokens, SessionAdapter{}, hold);
  Sequence& seq = lease->sequence();
  check_context(prompt.size(), seq, infill ? "input_prefix" : "prompt");
  request.prompt = prompt;

  ScheduledRequest sr = scheduled_request(*c.app, q, seq, request, rs);
  const bool post = request.post_sampling_probs;
  if (stream && !rs.start_stream(200, "text/event-stream")) return;
  GenerationResult r;
  size_t received = 0;  // streamed tokens; those whose text came with the end go in the last event
  try {
    r = scheduler_->run(std::move(sr), [&](std::string_view text, const std::vector<TokenLogprob>& logprobs) {
      if (!stream) return true;
      received += logprobs.size();
      Json chunk = {{"content", std::string(text)}, {"stop", false}};
      if (return_tokens) {
        chunk["tokens"] = Json::array();
        for (const TokenLogprob& t : logprobs) chunk["tokens"].push_back(t.token);
      }
      if (n_probs > 0) chunk["completion_probabilities"] = completion_probabilities(*m.tokenizer, logprobs, post);
      return api::send_event(rs, chunk);
    });
  } catch (const ServiceError& e) {
    if (!stream) throw;
    api::send_event(rs, Json{{"error", {{"message", e.what()}, {"code", e.http_status}, {"type", e.code}}}});
    rs.end_stream();
    return;
  }
  if (r.finish == FinishReason::kCancelled) return;  // the client went away
  store_->add_usage(c.app->id, static_cast<int64_t>(prompt.size() + r.tokens.size()));
  const double prompt_ms = r.prompt_seconds * 1e3, predicted_ms = r.generate_seconds * 1e3;
  Json done = {{"content", stream ? "" : r.text}, {"model", model_name()}, {"stop", true},
               {"stop_type", stop_type(r.finish)}, {"stopping_word", ""}, {"tokens_predicted", r.tokens.size()},
               {"tokens_evaluated", prompt.size()}, {"tokens_cached", prompt.size() - r.n_prompt_evaluated},
               {"truncated", false},
               {"timings", {{"prompt_n", r.n_prompt_evaluated}, {"prompt_ms", prompt_ms},
                            {"predicted_n", r.tokens.size()}, {"predicted_ms", predicted_ms},
                            {"predicted_per_second", predicted_ms > 0 ? 1e3 * r.tokens.size() / predicted_ms : 0}}}};
  done["generation_settings"] = generation_settings(request, context_of(c, *m.model));
  const size_t from = stream ? std::min(received, r.logprobs.size()) : 0;
  if (return_tokens)
    done["tokens"] = std::vector<int32_t>(r.tokens.begin() + static_cast<std::ptrdiff_t>(from), r.tokens.end());
  if (n_probs > 0)
    done["completion_probabilities"] = completion_probabilities(
        *m.tokenizer, std::vector<TokenLogprob>(r.logprobs.begin() + static_cast<std::ptrdiff_t>(from),
                                                r.logprobs.end()), post);
  if (!stream) return api::send_json(rs, 200, done);
  api::send_event(rs, done);
  rs.end_stream();
}

// GET /props: llama-server's description of the server, for its web UI and
// clients: the defaults a /completion gets, the model, its chat template.
void Service::native_props(const Caller& c, HttpResponse& rs) {
  LoadedModel& m = model();
  GenerationRequest defaults;
  read_native_sampling(Json::object(), defaults, m.tokenizer->n_vocab());
  const int64_t n_ctx = context_of(c, *m.model);
  auto text_of = [&](int32_t id) { return id < 0 ? std::string() : m.tokenizer->token_to_piece(id, true); };
  api::send_json(rs, 200,
                 {{"default_generation_settings",
                   {{"n_ctx", n_ctx}, {"is_processing", false}, {"params", generation_settings(defaults, n_ctx)}}},
                  {"total_slots", config()->max_running},
                  {"model_path", options_.model_path},
                  {"chat_template", m.chat_template->source()},
                  {"bos_token", text_of(m.tokenizer->bos_id())},
                  {"eos_token", text_of(m.tokenizer->eos_id())},
                  {"modalities", {{"vision", false}, {"audio", false}}},
                  {"build_info", "onellm"}});
}

// POST /apply-template: the prompt a /v1/chat/completions request with these
// messages (and tools, chat_template_kwargs) would be given, as text.
void Service::apply_template(const HttpRequest& rq, HttpResponse& rs) {
  Json body = api::parse_body(rq);
  LoadedModel& m = model();
  ChatTemplateOptions options;
  options.add_generation_prompt = api::bool_field(body, "add_generation_prompt", true);
  const ChatPrompt chat =
      prepare_chat_prompt(body, api::read_messages(body), *m.chat_template, m.chat_defaults, std::move(options));
  api::send_json(rs, 200, {{"prompt", chat_prompt_text(*m.tokenizer, *m.chat_template, chat.messages, chat.options)}});
}

}  // namespace onellm
