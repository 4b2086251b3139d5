// OpenAI-compatible endpoints: /v1/chat/completions and /v1/completions,
// whole responses or SSE streams, with usage.
#include <atomic>

#include "base/error.h"
#include "engine/infill.h"
#include "engine/prompt_lookup.h"
#include "service/api_util.h"
#include "service/completion.h"
#include "service/service.h"
#include "tokenizer/chat_template.h"

namespace onellm {
namespace {

using api::Json;

std::atomic<uint64_t> g_completion_counter{0};

std::string completion_id(const char* prefix) {
  return std::string(prefix) + std::to_string(static_cast<uint64_t>(api::unix_now() * 1000)) + "-" +
         std::to_string(g_completion_counter++);
}

// OpenAI's predicted outputs: {"type": "content", "content": text or text
// parts}. The prediction becomes the first source of prompt-lookup guesses
// (kPredictionDraft per pass unless "lookup_draft" says otherwise), so the
// output is what it would be without it, only sooner where it matches.
void read_prediction(const Json& body, const Tokenizer& tokenizer, GenerationRequest& r) {
  auto it = body.find("prediction");
  if (it == body.end() || it->is_null()) return;
  if (!it->is_object() || api::string_field(*it, "type", "") != "content" || !it->contains("content"))
    throw api::bad_request("'prediction' must be {\"type\": \"content\", \"content\": ...}", "prediction");
  const Json& content = (*it)["content"];
  std::string text;
  if (content.is_string()) {
    text = content.get<std::string>();
  } else if (content.is_array()) {
    for (const Json& part : content) {
      if (!part.is_object() || !part.contains("text") || !part["text"].is_string())
        throw api::bad_request("'prediction.content' parts must be {\"type\": \"text\", \"text\": ...}",
                               "prediction.content");
      text += part["text"].get<std::string>();
    }
  } else {
    throw api::bad_request("'prediction.content' must be a string or an array of text parts", "prediction.content");
  }
  r.predicted = tokenizer.encode(text, /*add_special=*/false, /*parse_special=*/false);
  if (!r.predicted.empty() && !(body.contains("lookup_draft") && !body["lookup_draft"].is_null()))
    r.lookup_draft = kPredictionDraft;
}

}  // namespace

void Service::chat_completions(const Caller& c, const HttpRequest& rq, HttpResponse& rs) {
  check_rate(c);
  Json body = api::parse_body(rq);
  LoadedModel& m = model();
  ChatPrompt chat = prepare_chat_prompt(body, api::read_messages(body), *m.chat_template, m.chat_defaults);
  CompletionJob job;
  job.output = std::move(chat.output);
  job.prompt = chat_prompt_tokens(*m.tokenizer, *m.chat_template, chat.messages, chat.options);
  job.reasoning = read_reasoning_format(body, m.chat_template->source(), *m.tokenizer, job.prompt);
  job.request.max_tokens = api::int_field(body, "max_completion_tokens", api::int_field(body, "max_tokens", -1, 1, 1 << 20), 1, 1 << 20);
  job.output.apply(job.request);
  if (api::bool_field(body, "logprobs", false))
    job.request.top_logprobs = static_cast<int>(api::int_field(body, "top_logprobs", 0, 0, 20));
  else if (body.contains("top_logprobs") && !body["top_logprobs"].is_null())
    throw api::bad_request("top_logprobs needs \"logprobs\": true", "top_logprobs");
  submit_completion(c, body, job, rs);
}

void Service::completions(const Caller& c, const HttpRequest& rq, HttpResponse& rs) {
  check_rate(c);
  Json body = api::parse_body(rq);
  auto found = body.find("prompt");
  const Json* p = found == body.end() ? nullptr : &*found;
  // A string or token ids (as llama-server takes them), or a list of one of those.
  if (p != nullptr && p->is_array() && p->size() == 1 && !p->front().is_number()) p = &p->front();
  const bool ids = p != nullptr && p->is_array() && !p->empty();
  if (p == nullptr || !(p->is_string() || ids))
    throw api::bad_request("'prompt' must be a string or token ids (one prompt per request)", "prompt");
  LoadedModel& m = model();
  CompletionJob job;
  job.chat = false;
  job.request.max_tokens = api::int_field(body, "max_tokens", 16, 0, 1 << 20);
  // "suffix": the text after the completion; the prompt is the text before it
  // (fill-in-the-middle, for code models).
  const std::string suffix = api::string_field(body, "suffix", "");
  if (!suffix.empty() && ids) throw api::bad_request("'suffix' needs the prompt as text", "suffix");
  if (!suffix.empty()) {
    InfillInput in;
    in.prefix = p->get<std::string>();
    in.suffix = suffix;
    job.prompt = infill_prompt(c, in, job.request.max_tokens, "suffix");
  } else {
    job.prompt = ids ? api::read_token_ids(*p, m.tokenizer->n_vocab(), "prompt")
                     : m.tokenizer->encode(p->get<std::string>(), true, true);
  }
  if (job.prompt.empty()) throw api::bad_request("the prompt is empty and the model adds no BOS token", "prompt");
  job.request.grammar = read_text_grammar(body);
  // The legacy field: the number of alternatives (0-5), null or absent for none.
  if (body.contains("logprobs") && !body["logprobs"].is_null())
    job.request.top_logprobs = static_cast<int>(api::int_field(body, "logprobs", 0, 0, 5));
  submit_completion(c, body, job, rs);
}

// The part chat and text completions share: sampling and streaming fields,
// class, quota, adapter, a scratch sequence of the app, and the run itself.
// The adapter is "adapter", or "model" when it names one (as vLLM serves
// LoRA modules); any other model name means the base model, so clients that
// send a fixed model name keep working.
void Service::submit_completion(const Caller& c, const api::Json& body, CompletionJob& job, HttpResponse& rs) {
  LoadedModel& m = model();
  api::read_sampling(body, job.request, m.tokenizer->n_vocab());
  read_prediction(body, *m.tokenizer, job.request);
  std::string adapter_name = api::string_field(body, "adapter", "");
  if (!body.contains("adapter")) {
    const std::string requested_model = api::string_field(body, "model", "");
    if (m.adapters.count(requested_model)) adapter_name = requested_model;
  }
  const SessionAdapter adapter = adapter_named(m, adapter_name, "adapter");
  job.stream = api::bool_field(body, "stream", false);
  job.n = static_cast<int>(api::int_field(body, "n", 1, 1, 16));
  if (auto so = body.find("stream_options"); so != body.end() && so->is_object())
    job.include_usage = api::bool_field(*so, "include_usage", false);
  const QosClass q = qos_for(c, api::string_field(body, "qos", ""));
  check_tokens(c, job.prompt.size(), job.request.max_tokens);
  std::unique_lock<std::mutex> hold;
  std::unique_ptr<SessionLease> lease = scratch_lease(c, job.prompt, q.priority, job.request.max_tokens, adapter, hold);
  run_completion(*scheduler_, *c.app, q, lease->sequence(), job, rs, adapter_name.empty() ? model_name() : adapter_name,
                 *store_);
}

namespace {

// OpenAI's logprobs object: chat's {"content": [{token, logprob, bytes,
// top_logprobs}]}, or the legacy completions' parallel arrays, whose
// text_offset counts from `offset` (advanced past these tokens). A piece that
// is not valid UTF-8 on its own is sent with U+FFFD (the dump replaces it);
// "bytes" has the exact bytes.
Json logprobs_json(const std::vector<TokenLogprob>& logprobs, const Tokenizer& tok, bool chat, size_t& offset) {
  auto entry = [&](int32_t id, float lp) { return api::logprob_entry(tok, id, lp); };
  if (chat) {
    Json content = Json::array();
    for (const TokenLogprob& t : logprobs) {
      Json e = entry(t.token, t.logprob), top = Json::array();
      for (const auto& [id, lp] : t.top) top.push_back(entry(id, lp));
      e["top_logprobs"] = top;
      content.push_back(e);
    }
    return {{"content", content}};
  }
  Json tokens = Json::array(), lps = Json::array(), tops = Json::array(), offsets = Json::array();
  for (const TokenLogprob& t : logprobs) {
    const std::string piece = tok.token_to_piece(t.token, true);
    tokens.push_back(piece);
    lps.push_back(t.logprob);
    Json top = Json::object();
    for (const auto& [id, lp] : t.top) top[tok.token_to_piece(id, true)] = lp;
    tops.push_back(top);
    offsets.push_back(offset);
    offset += piece.size();
  }
  return {{"tokens", tokens}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

}  // namespace

ReasoningFormat read_reasoning_format(const api::Json& body, const std::string& template_source,
                                      const Tokenizer& tokenizer, const std::vector<int32_t>& prompt) {
  const std::string how = api::string_field(body, "reasoning_format", "auto");
  if (how == "none") return {};
  if (how != "auto" && how != "deepseek")
    throw api::bad_request("reasoning_format must be \"auto\" or \"none\"", "reasoning_format");
  return reasoning_format(template_source, tokenizer, prompt);
}

void check_context(size_t prompt_tokens, const Sequence& seq, const char* param) {
  if (static_cast<int64_t>(prompt_tokens) >= seq.n_ctx())
    throw ServiceError("CONTEXT_TOO_LONG", "the prompt has " + std::to_string(prompt_tokens) +
                                               " tokens; the context holds " + std::to_string(seq.n_ctx()),
                       400, 0, param);
}

void run_completion(QosScheduler& scheduler, const AppConfig& app, const QosClass& qos, Sequence& seq,
                    CompletionJob& job, HttpResponse& rs, const std::string& model_name, SessionStore& store) {
  check_context(job.prompt.size(), seq, job.chat ? "messages" : "prompt");
  job.request.prompt = job.prompt;
  const std::string id = completion_id(job.chat ? "chatcmpl-" : "cmpl-");
  const int64_t created = static_cast<int64_t>(api::unix_now());
  const char* object = job.chat ? "chat.completion.chunk" : "text_completion";
  const bool want_logprobs = job.request.top_logprobs >= 0;
  const bool streaming = job.stream;
  if (streaming && !rs.start_stream(200, "text/event-stream")) return;
  Json choices = Json::array();
  size_t completion_tokens = 0;
  int64_t guessed = 0, guessed_right = 0;  // prompt lookup

  // Choice `index` (n > 1: one after another on the same sequence, which
  // keeps the prompt's KV; a given seed is seed + index). Streams its chunks,
  // or adds its choice; false when the stream ended early.
  auto run_choice = [&](int index) {
    auto chunk = [&](const std::string& text, const Json& finish, const char* field = "content") {
      Json choice = job.chat ? Json{{"index", index}, {"delta", Json::object()}, {"finish_reason", finish}}
                             : Json{{"index", index}, {"text", text}, {"finish_reason", finish}};
      if (job.chat && !text.empty()) choice["delta"] = {{field, text}};
      return Json{{"id", id}, {"object", object}, {"created", created}, {"model", model_name},
                  {"choices", Json::array({choice})}};
    };
    ScheduledRequest sr = scheduled_request(app, qos, seq, job.request, rs);
    if (sr.request.sampling.seed != SamplingParams::kRandomSeed)
      sr.request.sampling.seed += static_cast<uint64_t>(index);
    ContentStreamFilter content_filter(job.output.tools_active ? tool_call_triggers(job.output.style)
                                                               : std::vector<std::string>{});
    ReasoningStream reasoning(job.reasoning);
    // Streamed log-probabilities ride on the chunk that carries their tokens'
    // text, or on a later one while the text is held back.
    std::vector<TokenLogprob> unsent;
    size_t received = 0, text_offset = 0;
    auto with_logprobs = [&](Json c) {
      if (!unsent.empty()) {
        c["choices"][0]["logprobs"] = logprobs_json(unsent, seq.tokenizer(), job.chat, text_offset);
        unsent.clear();
      }
      return c;
    };
    // Reasoning goes out as delta.reasoning_content, the rest through the filter.
    auto stream_text = [&](const ReasoningSplit& part) {
      std::string shown = content_filter.feed(part.content);
      if (!part.reasoning.empty()) {
        Json c = chunk(part.reasoning, nullptr, "reasoning_content");
        if (!api::send_event(rs, shown.empty() ? with_logprobs(std::move(c)) : c)) return false;
      }
      return shown.empty() || api::send_event(rs, with_logprobs(chunk(shown, nullptr)));
    };
    if (streaming && job.chat) {
      Json first = chunk("", nullptr);
      first["choices"][0]["delta"] = {{"role", "assistant"}, {"content", ""}};
      api::send_event(rs, first);
    }
    GenerationResult r;
    try {
      r = scheduler.run(std::move(sr), [&](std::string_view text, const std::vector<TokenLogprob>& logprobs) {
        if (!streaming) return true;
        received += logprobs.size();
        if (want_logprobs) unsent.insert(unsent.end(), logprobs.begin(), logprobs.end());
        return stream_text(reasoning.feed(text));
      });
    } catch (const ServiceError& e) {
      if (!streaming) throw;
      api::send_event(rs, Json{{"error", {{"message", e.what()}, {"code", e.code}}}});
      rs.end_stream();
      return false;
    }
    // The prompt counts once, each choice's tokens apiece.
    store.add_usage(app.id, static_cast<int64_t>((index == 0 ? job.prompt.size() : 0) + r.tokens.size()));
    completion_tokens += r.tokens.size();
    guessed += r.draft_tokens;
    guessed_right += r.draft_accepted;
    bool has_calls = false;
    const ReasoningSplit split = split_reasoning(r.text, job.reasoning);
    Json message = job.chat ? assistant_message(job.output, split.content, has_calls) : Json();
    if (job.chat && !split.reasoning.empty()) message["reasoning_content"] = split.reasoning;
    const bool cut = r.finish == FinishReason::kMaxTokens || r.finish == FinishReason::kContextFull;
    const std::string finish = has_calls && !cut ? "tool_calls" : finish_reason_name(r.finish);
    if (!streaming) {
      Json choice = job.chat ? Json{{"index", index}, {"message", message}, {"finish_reason", finish}}
                             : Json{{"index", index}, {"text", r.text}, {"finish_reason", finish}};
      if (want_logprobs) choice["logprobs"] = logprobs_json(r.logprobs, seq.tokenizer(), job.chat, text_offset);
      choices.push_back(std::move(choice));
      return true;
    }
    if (r.finish == FinishReason::kCancelled) return false;  // the client went away
    if (want_logprobs && received < r.logprobs.size())  // tokens whose text came with the end
      unsent.insert(unsent.end(), r.logprobs.begin() + static_cast<std::ptrdiff_t>(received), r.logprobs.end());
    if (job.chat) {
      stream_text(reasoning.finish());
      // Content held back while a call might have been starting, then the calls whole.
      const std::string content = message["content"].is_string() ? message["content"].get<std::string>() : "";
      const std::string& shown = content_filter.shown();
      if (content.size() > shown.size() && content.compare(0, shown.size(), shown) == 0)
        api::send_event(rs, with_logprobs(chunk(content.substr(shown.size()), nullptr)));
      if (has_calls) {
        Json calls = Json::array();
        for (size_t i = 0; i < message["tool_calls"].size(); ++i) {
          Json call = message["tool_calls"][i];
          call["index"] = i;
          calls.push_back(call);
        }
        Json c = chunk("", nullptr);
        c["choices"][0]["delta"] = {{"tool_calls", calls}};
        api::send_event(rs, c);
      }
    }
    if (!unsent.empty()) api::send_event(rs, with_logprobs(chunk("", nullptr)));  // the rest, before the finish
    api::send_event(rs, chunk("", finish));
    return true;
  };

  for (int i = 0; i < job.n; ++i)
    if (!run_choice(i)) return;
  Json usage = {{"prompt_tokens", job.prompt.size()}, {"completion_tokens", completion_tokens},
                {"total_tokens", job.prompt.size() + completion_tokens}};
  if (guessed > 0)  // as OpenAI reports its predicted outputs
    usage["completion_tokens_details"] = {{"accepted_prediction_tokens", guessed_right},
                                          {"rejected_prediction_tokens", guessed - guessed_right}};
  if (streaming) {
    if (job.include_usage) {
      Json u = {{"id", id}, {"object", object}, {"created", created}, {"model", model_name},
                {"choices", Json::array()}, {"usage", usage}};
      api::send_event(rs, u);
    }
    rs.write("data: [DONE]\n\n");
    rs.end_stream();
    return;
  }
  api::send_json(rs, 200, {{"id", id}, {"object", job.chat ? "chat.completion" : "text_completion"},
                           {"created", created}, {"model", model_name}, {"choices", std::move(choices)},
                           {"usage", usage}});
}

}  // namespace onellm
