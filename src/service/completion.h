// Running one completion through the scheduler with an OpenAI-shaped
// response (private to the service layer).
#pragma once

#include <string>
#include <vector>

#include "service/http_server.h"
#include "service/output_constraint.h"
#include "service/qos_scheduler.h"
#include "service/reasoning.h"
#include "service/session_store.h"

namespace onellm {

struct CompletionJob {
  std::vector<int32_t> prompt;
  GenerationRequest request;
  bool stream = false, include_usage = false, chat = true;
  int n = 1;  // choices, generated one after another
  OutputConstraint output;  // chat: tools and response_format
  ReasoningFormat reasoning;  // chat: <think> split off as reasoning_content
};

// "reasoning_format": "auto" (default; "deepseek" is the same) or "none".
ReasoningFormat read_reasoning_format(const api::Json& body, const std::string& template_source,
                                      const Tokenizer& tokenizer, const std::vector<int32_t>& prompt);

void run_completion(QosScheduler& scheduler, const AppConfig& app, const QosClass& qos, Sequence& seq,
                    CompletionJob& job, HttpResponse& rs, const std::string& model_name, SessionStore& store);

// A request of `app` in class `qos` on `seq`, cancelled when the client of
// `rs` goes away.
inline ScheduledRequest scheduled_request(const AppConfig& app, const QosClass& qos, Sequence& seq,
                                          GenerationRequest request, HttpResponse& rs) {
  ScheduledRequest sr;
  sr.app_id = app.id;
  sr.qos = qos;
  sr.sequence = &seq;
  sr.request = std::move(request);
  sr.client_gone = [&rs] { return rs.client_gone(); };
  return sr;
}

// CONTEXT_TOO_LONG unless the prompt leaves room for at least one token.
void check_context(size_t prompt_tokens, const Sequence& seq, const char* param);

}  // namespace onellm
