// Helpers shared by the API handlers: typed errors in OpenAI's error shape,
// JSON bodies, SSE events, and request fields -> engine parameters.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "engine/engine.h"
#include "service/http_server.h"
#include "service/qos_scheduler.h"

namespace onellm::api {

using Json = nlohmann::ordered_json;

inline ServiceError bad_request(const std::string& message, const std::string& param = "") {
  return ServiceError("BAD_REQUEST", message, 400, 0, param);
}

// {"error": {"message", "type", "code", "param"}} with the HTTP status of the code.
void send_error(HttpResponse& rs, const ServiceError& e);
void send_json(HttpResponse& rs, int status, const Json& body);
// One SSE event "data: <json>\n\n"; false once the client is gone.
bool send_event(HttpResponse& rs, const Json& data);

// Parses the body as a JSON object; BAD_REQUEST naming the problem otherwise.
Json parse_body(const HttpRequest& rq);

// Typed field readers: absent -> fallback; wrong type -> BAD_REQUEST naming the field.
double number_field(const Json& body, const char* key, double fallback, double lo, double hi);
int64_t int_field(const Json& body, const char* key, int64_t fallback, int64_t lo, int64_t hi);
bool bool_field(const Json& body, const char* key, bool fallback);
std::string string_field(const Json& body, const char* key, const std::string& fallback);

// The request's "messages" (OpenAI chat format: content a string, null or a
// list of text parts; other fields such as tool_calls kept for the template).
std::vector<ChatMessage> read_messages(const Json& body);

// chat_template_kwargs (an object of template variables, e.g. Qwen3's
// enable_thinking) into options; BAD_REQUEST naming the field otherwise.
void read_template_kwargs(const Json& body, ChatTemplateOptions& options);

// A JSON array of token ids of a vocabulary of n_vocab; BAD_REQUEST naming
// `param` for any item that is not one.
std::vector<int32_t> read_token_ids(const Json& ids, int32_t n_vocab, const std::string& param);

// temperature, top_p, top_k, min_p, seed, penalties, stop, logit_bias, and
// llama-server's typical_p, xtc_probability / xtc_threshold, mirostat /
// mirostat_tau / mirostat_eta.
void read_sampling(const Json& body, GenerationRequest& request, int32_t n_vocab);

// One token's {"token", "logprob", "bytes"} (OpenAI's and Ollama's logprobs
// entries): the piece, with "bytes" exact when the piece alone is not UTF-8.
Json logprob_entry(const Tokenizer& tokenizer, int32_t id, float logprob);

// A JSON string that is valid UTF-8 whatever the model produced.
std::string safe_text(const std::string& s);
double unix_now();
std::string rfc3339_now();  // "2026-12-07T16:26:31.123456789Z" (UTC, nanoseconds), as Ollama writes times

}  // namespace onellm::api
