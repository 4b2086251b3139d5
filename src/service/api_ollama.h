// Ollama's API beside the OpenAI one (private to the service layer): the
// pieces api_ollama.cpp (chat, generate) and api_ollama_models.cpp (tags,
// show, ps, version, embed, errors) share.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "service/completion.h"

namespace onellm {

struct OllamaJob : CompletionJob {  // prompt, request, stream, output (chat), reasoning
  std::string model;                 // the name the responses echo
  bool raw = false;                  // /api/generate without the chat template
  double load_seconds = 0;           // spent loading the model for this request
  std::chrono::steady_clock::time_point t0;  // the request's arrival
};

// A request's keep_alive in ms: seconds as a number, or a Go duration
// ("5m", "1h30m", "250ms"); negative (-1): kept until the daemon stops.
// nullopt when absent; a malformed one is a bad request naming it.
std::optional<int64_t> read_keep_alive(const api::Json& body);

// Runs the job and answers with Ollama's objects: one per piece of text as
// NDJSON (stream) or one whole, the last with done, done_reason, counts and
// nanosecond durations (and "context" for /api/generate).
void run_ollama(QosScheduler& scheduler, SessionStore& store, const AppConfig& app, const QosClass& qos,
                Sequence& seq, OllamaJob& job, HttpResponse& rs);
// A request with no prompt only loads the model: done_reason "load" (or
// "unload" when its keep_alive is 0, as Ollama's `ollama stop` sends).
void ollama_loaded(const OllamaJob& job, HttpResponse& rs, const char* reason = "load");

// "options" (Modelfile parameters) -> sampling, num_predict and stop, with
// Ollama's defaults; BAD_REQUEST naming the option otherwise.
void read_ollama_options(const api::Json& body, GenerationRequest& request, int32_t n_vocab);

std::string ollama_model_name(const std::string& name);     // "name:latest", as /api/tags lists it
std::string ollama_base_name(const std::string& requested);  // without a ":latest" tag

// {"error": "message"} with the error's HTTP status: Ollama's error shape.
void send_ollama_error(HttpResponse& rs, const ServiceError& e);

}  // namespace onellm
