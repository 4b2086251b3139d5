// Native sessions: app-owned persistent conversations.
//   POST /v1/sessions {"instructions","qos","name","adapter"} -> the session
//   GET /v1/sessions, GET|DELETE /v1/sessions/{id}
//   POST /v1/sessions/{id}/messages {"role":"user","content",...} -> {"content","usage"} or SSE
// A session id of another app is answered exactly like an unknown one.
#include "base/error.h"
#include "service/api_util.h"
#include "service/completion.h"
#include "service/service.h"
#include "tokenizer/chat_template.h"

namespace onellm {
namespace {

using api::Json;

Json describe(const SessionRecord& r, bool with_messages) {
  Json j = {{"id", r.id}, {"object", "session"}, {"name", r.name}, {"instructions", r.instructions},
            {"qos", r.qos}, {"adapter", r.adapter}, {"created", r.created}, {"updated", r.updated}};
  if (with_messages) j["messages"] = r.messages;
  else j["n_messages"] = r.messages.size();
  return j;
}

ServiceError unknown_session(const std::string& id) {
  return ServiceError("UNKNOWN_SESSION", "no session '" + id + "' for this app", 404, 0, "id");
}

}  // namespace

void Service::sessions_api(const Caller& c, const HttpRequest& rq, HttpResponse& rs) {
  const std::string rest = rq.path.size() > 13 ? rq.path.substr(13) : "";  // after "/v1/sessions/"
  if (rq.path == "/v1/sessions" && rq.method == "POST") {
    check_rate(c);
    Json body = rq.body.empty() ? Json::object() : api::parse_body(rq);
    const std::string name = api::string_field(body, "name", "");
    if (name.size() > 256) throw api::bad_request("'name' is longer than 256 bytes", "name");
    // The adapter is the session's for life: its KV is computed with it.
    const std::string adapter = api::string_field(body, "adapter", "");
    if (!name.empty())
      if (auto existing = store_->get(c.app->id, name)) {
        if (body.contains("adapter") && existing->adapter != adapter)
          throw ServiceError("BAD_REQUEST", "session '" + name + "' exists with adapter '" + existing->adapter +
                                                "'; a session's adapter is fixed when it is created", 409, 0, "adapter");
        return api::send_json(rs, 200, describe(*existing, false));
      }
    const QosClass q = qos_for(c, api::string_field(body, "qos", ""));
    if (!adapter.empty()) adapter_named(model(), adapter, "adapter");
    const int64_t limit = c.app->quota.max_sessions;
    if (limit > 0 && store_->count(c.app->id) >= limit)
      throw ServiceError("QUOTA_EXCEEDED", "app '" + c.app->id + "' already has its " + std::to_string(limit) +
                                               " sessions; delete one first", 429);
    SessionRecord r = store_->create(c.app->id, name, api::string_field(body, "instructions", ""), q.name, adapter);
    return api::send_json(rs, 200, describe(r, false));
  }
  if (rq.path == "/v1/sessions" && rq.method == "GET") {
    Json data = Json::array();
    for (const SessionRecord& r : store_->list(c.app->id)) data.push_back(describe(r, false));
    return api::send_json(rs, 200, {{"object", "list"}, {"data", data}});
  }
  const size_t slash = rest.find('/');
  const std::string id = rest.substr(0, slash);
  if (id.empty()) throw api::bad_request("no session id in the path");
  if (slash != std::string::npos) {
    if (rest.substr(slash) == "/messages" && rq.method == "POST") return session_message(c, id, rq, rs);
    throw ServiceError("BAD_REQUEST", "no route for " + rq.method + " " + rq.path, 404);
  }
  if (rq.method == "GET") {
    auto r = store_->get(c.app->id, id);
    if (!r) throw unknown_session(id);
    return api::send_json(rs, 200, describe(*r, true));
  }
  if (rq.method == "DELETE") {
    auto r = store_->get(c.app->id, id);
    if (!r || !store_->remove(c.app->id, r->id)) throw unknown_session(id);
    forget_session(c, r->id);
    return api::send_json(rs, 200, {{"id", r->id}, {"object", "session"}, {"deleted", true}});
  }
  throw ServiceError("BAD_REQUEST", "method " + rq.method + " is not allowed on a session", 405);
}

void Service::session_message(const Caller& c, const std::string& id, const HttpRequest& rq, HttpResponse& rs) {
  check_rate(c);
  Json body = api::parse_body(rq);
  auto record = store_->get(c.app->id, id);
  if (!record) throw unknown_session(id);
  const std::string role = api::string_field(body, "role", "user");
  if (role != "user" && role != "tool") throw api::bad_request("'role' must be user or tool", "role");
  auto content = body.find("content");
  if (content == body.end() || !content->is_string()) throw api::bad_request("'content' must be a string", "content");

  Json new_message = {{"role", role}, {"content", content->get<std::string>()}};
  if (role == "tool") new_message["tool_call_id"] = api::string_field(body, "tool_call_id", "");

  LoadedModel& m = model();
  auto served = m.adapters.find(record->adapter);
  if (!record->adapter.empty() && served == m.adapters.end())
    throw ServiceError("ADAPTER_UNAVAILABLE", "session '" + record->id + "' runs with adapter '" + record->adapter +
                                                  "', which this daemon does not serve (serve --lora " +
                                                  record->adapter + "=FILE)", 409, 0, "adapter");
  const SessionAdapter adapter = record->adapter.empty() ? SessionAdapter{} : served->second;
  std::vector<ChatMessage> messages;
  if (!record->instructions.empty()) messages.push_back({"system", record->instructions, ChatJson::object()});
  Json history = record->messages;
  history.push_back(new_message);
  // The stored turns read as a chat request's messages are (content null beside tool calls).
  for (ChatMessage& cm : api::read_messages(Json{{"messages", std::move(history)}})) messages.push_back(std::move(cm));
  ChatPrompt chat = prepare_chat_prompt(body, std::move(messages), *m.chat_template, m.chat_defaults);
  CompletionJob job;
  job.output = std::move(chat.output);
  job.prompt = chat_prompt_tokens(*m.tokenizer, *m.chat_template, chat.messages, chat.options);
  job.reasoning = read_reasoning_format(body, m.chat_template->source(), *m.tokenizer, job.prompt);
  job.request.max_tokens = api::int_field(body, "max_tokens", 512, 1, 1 << 20);
  api::read_sampling(body, job.request, m.tokenizer->n_vocab());
  job.output.apply(job.request);
  job.stream = api::bool_field(body, "stream", false);
  const QosClass q = qos_for(c, api::string_field(body, "qos", record->qos));
  check_tokens(c, job.prompt.size(), job.request.max_tokens);

  // One request at a time per session; its KV comes from the context store
  // (live, parked in memory, on disk, or recomputed).
  std::shared_ptr<SessionSlot> slot = session_slot(c, record->id);
  std::unique_lock<std::mutex> hold(slot->busy, std::try_to_lock);
  if (!hold.owns_lock()) throw ServiceError("BUSY", "session '" + record->id + "' is already answering a message", 409, 1);
  const int64_t n_ctx = c.context_tokens();
  RestoreReport restored;
  SessionLease lease(*m.context, c.app->id, record->id, q.priority, n_ctx, job.prompt,
                     static_cast<int64_t>(job.prompt.size()) + job.request.max_tokens, &restored,
                     public_prefix_tokens(m, job.prompt), false, adapter);
  check_context(job.prompt.size(), lease.sequence(), "content");
  job.request.prompt = job.prompt;

  ScheduledRequest sr = scheduled_request(*c.app, q, lease.sequence(), job.request, rs);
  ContentStreamFilter content_filter(job.output.tools_active ? tool_call_triggers(job.output.style)
                                                             : std::vector<std::string>{});
  if (job.stream && !rs.start_stream(200, "text/event-stream")) return;
  ReasoningStream reasoning(job.reasoning);
  auto stream_text = [&](const ReasoningSplit& part) {
    if (!part.reasoning.empty() && !api::send_event(rs, {{"reasoning_delta", part.reasoning}})) return false;
    std::string shown = content_filter.feed(part.content);  // tool calls are not streamed as text
    return shown.empty() || api::send_event(rs, {{"delta", shown}});
  };
  GenerationResult r;
  try {
    r = scheduler_->run(std::move(sr), [&](std::string_view text, const std::vector<TokenLogprob>&) {
      if (!job.stream) return true;
      return stream_text(reasoning.feed(text));
    });
  } catch (const ServiceError& e) {
    if (!job.stream) throw;
    api::send_event(rs, {{"error", {{"message", e.what()}, {"code", e.code}}}});
    rs.end_stream();
    return;
  }
  lease.release();  // write-back is queued before the reply, so status shows it
  if (r.finish == FinishReason::kCancelled) return;  // nothing is recorded for an abandoned turn
  bool has_calls = false;
  if (job.stream) stream_text(reasoning.finish());
  const ReasoningSplit split = split_reasoning(r.text, job.reasoning);
  Json answer = assistant_message(job.output, split.content, has_calls);
  if (!split.reasoning.empty()) answer["reasoning_content"] = split.reasoning;
  store_->append(c.app->id, record->id, Json::array({new_message, answer}));
  store_->add_usage(c.app->id, static_cast<int64_t>(job.prompt.size() + r.tokens.size()));
  Json usage = {{"prompt_tokens", job.prompt.size()}, {"completion_tokens", r.tokens.size()},
                {"total_tokens", job.prompt.size() + r.tokens.size()},
                {"prompt_tokens_evaluated", r.n_prompt_evaluated}, {"prompt_tokens_restored", restored.tokens_restored}};
  Json reply = {{"session_id", record->id}, {"content", answer["content"].is_string() ? answer["content"] : Json("")},
                {"finish_reason", has_calls && r.finish != FinishReason::kMaxTokens && r.finish != FinishReason::kContextFull
                                      ? "tool_calls" : finish_reason_name(r.finish)}, {"usage", usage}};
  if (has_calls) reply["tool_calls"] = answer["tool_calls"];
  if (answer.contains("reasoning_content")) reply["reasoning_content"] = answer["reasoning_content"];
  // The turn is recorded: the session takes its next message from here on,
  // before this reply reaches the client (who may answer at once).
  hold.unlock();
  if (job.stream) {
    api::send_event(rs, reply);
    rs.write("data: [DONE]\n\n");
    rs.end_stream();
  } else {
    api::send_json(rs, 200, reply);
  }
}

}  // namespace onellm
