// QosScheduler: one engine thread runs every request on the shared model,
// interleaving them step by step: each tick decodes one token for every
// running request that is not preempted (one batched pass), then advances
// the prompt chunk of the most urgent request still reading its prompt,
// layer by layer, for as long as the decoding streams' per-token objective
// allows and no request arrives. Higher classes preempt lower ones (a paused
// request keeps its KV cache, a paused chunk its activations); apps of one
// class share fairly.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/error.h"
#include "engine/engine.h"
#include "service/service_config.h"

namespace onellm {

// A typed service error; code is one of BUSY, QUOTA_EXCEEDED,
// CONTEXT_TOO_LONG, UNKNOWN_SESSION, FORBIDDEN, MODEL_UNAVAILABLE, BAD_REQUEST.
struct ServiceError : Error {
  ServiceError(std::string code_, const std::string& message, int http_status_, double retry_after_s_ = 0,
               std::string param_ = "")
      : Error(message), code(std::move(code_)), http_status(http_status_), retry_after_s(retry_after_s_),
        param(std::move(param_)) {}
  std::string code;
  int http_status;
  double retry_after_s;
  std::string param;
};

struct ScheduledRequest {
  std::string app_id;
  QosClass qos;  // a copy: a config reload may replace the table meanwhile
  Sequence* sequence = nullptr;  // must stay alive and unused by others until run() returns
  GenerationRequest request;
  std::function<bool()> client_gone;  // polled; true cancels the request
};

struct RequestTimings {
  double queue_ms = 0, ttft_ms = 0, tpot_ms = 0, total_ms = 0;
};

struct SchedulerStats {
  int64_t waiting = 0, running = 0, completed = 0, rejected = 0, cancelled = 0;
  int64_t prompt_tokens = 0, generated_tokens = 0;
  int64_t decode_passes = 0, max_decode_batch = 0;  // batched decode passes; generated / passes = mean batch
  double prefill_ms_per_token = 0, decode_ms_per_step = 0;
};

class QosScheduler {
 public:
  explicit QosScheduler(std::shared_ptr<const ServiceConfig> config);
  // A reloaded config (SIGHUP): queue and batch limits and class objectives
  // apply from the next tick; requests keep the class they were admitted with.
  void set_config(std::shared_ptr<const ServiceConfig> config);
  // Prompt-lookup decoding for requests that do not set it
  // (GenerationRequest::lookup_draft < 0): up to n guessed tokens checked in
  // each decode pass with the pending one (0: off, the default).
  void set_default_lookup_draft(int32_t n) { default_lookup_draft_ = n; }
  ~QosScheduler();

  // Queues the request and blocks until it finishes. on_text is called on the
  // caller's thread with each piece of text as it is generated, and the
  // log-probabilities (when asked for) of the tokens decided since the last
  // call; returning false cancels. The result holds all of them. Throws
  // ServiceError BUSY when it cannot be admitted.
  using TextSink = std::function<bool(std::string_view text, const std::vector<TokenLogprob>& logprobs)>;
  GenerationResult run(ScheduledRequest request, const TextSink& on_text, RequestTimings* timings = nullptr);

  // Stops admitting; requests already admitted run to completion.
  void drain();
  void stop();
  SchedulerStats stats() const;

 private:
  struct Job;
  void loop();
  bool tick(std::unique_lock<std::mutex>& lock);
  std::vector<Job*> by_urgency();
  double predicted_wait_ms(const Job& job) const;

  std::shared_ptr<const ServiceConfig> config() const { return std::atomic_load(&config_); }
  std::shared_ptr<const ServiceConfig> config_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::vector<std::shared_ptr<Job>> jobs_;
  std::map<std::string, double> app_service_;  // tokens served per app (fairness within a class)
  SchedulerStats stats_;
  bool draining_ = false, stopping_ = false;
  uint64_t next_id_ = 0;
  std::atomic<int32_t> default_lookup_draft_{0};
  std::atomic<uint64_t> arrivals_{0};  // admitted requests: a prompt chunk yields when it changes
  std::thread thread_;
};

}  // namespace onellm
