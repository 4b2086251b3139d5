#include "service/qos_scheduler.h"

#include <algorithm>

#include "base/error.h"

namespace onellm {
namespace {

using Clock = std::chrono::steady_clock;

// One layer of a lower class's prompt chunk may take this share of a higher
// class's first-token objective: a request of that class arriving meanwhile
// waits for that layer (chunks yield between layers).
constexpr double kChunkShareOfTtft = 0.25;
// A chunk's layers are sized to this share of the time a decode step leaves
// within the per-token objective: layers late in a long prompt cost more
// than the average the size is computed from (attention grows with the
// position), and the slice should not overrun the objective.
constexpr double kLayerShareOfSlice = 0.8;

// Prompt tokens for a new chunk of a request of class `priority`: up to
// max(prefill_chunk, 512), fewer when one of its `steps` (a layer) would take
// longer than a more urgent arrival may wait or than fits between a higher
// class's decode steps: a share of the tightest first-token objective above
// this class, and of what the tightest per-token objective above it (or the
// slice the streams decoding now leave, < 1e17 when they exist) leaves beside
// a decode step.
int64_t prompt_chunk_tokens(const ServiceConfig& cfg, int priority, int64_t steps, double prefill_cost,
                            double decode_cost, double slice_budget) {
  const int64_t most = std::max<int64_t>(cfg.prefill_chunk, 512);
  if (prefill_cost <= 0) return most;  // nothing measured yet
  double step_budget = kLayerShareOfSlice * slice_budget;
  for (const QosClass& q : cfg.qos)
    if (q.priority > priority)
      step_budget = std::min({step_budget, kChunkShareOfTtft * q.ttft_ms, kLayerShareOfSlice * (q.tpot_ms - decode_cost)});
  if (step_budget >= 1e17) return most;
  return std::clamp<int64_t>(static_cast<int64_t>(step_budget * static_cast<double>(steps) / prefill_cost), 8, most);
}

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

struct QosScheduler::Job {
  uint64_t id = 0;
  ScheduledRequest req;
  std::unique_ptr<Generation> gen;  // made on the engine thread
  std::unique_ptr<Sequence::ChunkEval> chunk;  // a prompt chunk in flight (engine thread)
  double chunk_ms = 0;                         // time its layers took so far
  double chunk_step_ms = 0;                    // ... and the last of them
  Clock::time_point arrival, started, first_token;
  // Read by callers' threads (admission, stats) while the engine thread,
  // which works without the lock, changes them: atomics, and never `gen`.
  std::atomic<bool> begun{false};
  std::atomic<int64_t> prompt_left{0};  // prompt tokens not yet evaluated
  bool engine_done = false;
  std::atomic<bool> caller_cancelled{false};
  // Hand-over to the caller's thread.
  std::mutex out_mu;
  std::condition_variable out_cv;
  std::string pending;
  std::vector<TokenLogprob> pending_logprobs;  // of the tokens decided since the last hand-over
  size_t logprobs_handed = 0;                  // engine thread: entries of gen's result moved so far
  bool finished = false;
  std::exception_ptr error;
  GenerationResult result;

  int priority() const { return req.qos.priority; }
  bool prefilling() const { return prompt_left.load() > 0; }
};

QosScheduler::QosScheduler(std::shared_ptr<const ServiceConfig> config)
    : config_(std::move(config)), thread_([this] { loop(); }) {}

void QosScheduler::set_config(std::shared_ptr<const ServiceConfig> config) { std::atomic_store(&config_, std::move(config)); }

QosScheduler::~QosScheduler() { stop(); }

void QosScheduler::drain() {
  std::lock_guard<std::mutex> lock(mu_);
  draining_ = true;
}

void QosScheduler::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    draining_ = true;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

SchedulerStats QosScheduler::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  SchedulerStats s = stats_;
  for (const auto& j : jobs_) (j->begun ? s.running : s.waiting)++;
  return s;
}

double QosScheduler::predicted_wait_ms(const Job& job) const {
  if (stats_.prefill_ms_per_token <= 0) return 0;
  // Only the prompts ahead of this one: its own prompt costs the same
  // whenever it runs, so it is no reason to turn the request away.
  double tokens = 0;
  for (const auto& j : jobs_)
    if (j->priority() >= job.priority() && j->prefilling())
      tokens += static_cast<double>(j->prompt_left.load());
  return tokens * stats_.prefill_ms_per_token;
}

GenerationResult QosScheduler::run(ScheduledRequest request, const TextSink& on_text, RequestTimings* timings) {
  auto job = std::make_shared<Job>();
  job->req = std::move(request);
  if (job->req.request.lookup_draft < 0) job->req.request.lookup_draft = default_lookup_draft_;
  job->prompt_left = static_cast<int64_t>(job->req.request.prompt.size());
  job->arrival = Clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (draining_) throw ServiceError("MODEL_UNAVAILABLE", "the service is shutting down", 503, 1);
    int64_t waiting = 0;
    for (const auto& j : jobs_) waiting += j->begun ? 0 : 1;
    if (waiting >= config()->max_queue) {
      stats_.rejected++;
      throw ServiceError("BUSY", "too many requests are waiting (" + std::to_string(waiting) + ")", 429, 1);
    }
    const double wait = predicted_wait_ms(*job);
    const double limit = std::max(4 * job->req.qos.ttft_ms, 2000.0);
    if (job->req.qos.name != "background" && wait > limit) {
      stats_.rejected++;
      throw ServiceError("BUSY",
                         "the " + job->req.qos.name + " objective cannot be met now (predicted first token in " +
                             std::to_string(static_cast<int64_t>(wait)) + " ms)",
                         429, std::max(1.0, wait / 1000.0));
    }
    job->id = next_id_++;
    jobs_.push_back(job);
    arrivals_++;
  }
  wake_.notify_one();

  std::unique_lock<std::mutex> out(job->out_mu);
  while (true) {
    job->out_cv.wait_for(out, std::chrono::milliseconds(50), [&] { return job->finished || !job->pending.empty(); });
    if (!job->pending.empty()) {
      std::string text;
      text.swap(job->pending);
      std::vector<TokenLogprob> logprobs;
      logprobs.swap(job->pending_logprobs);
      out.unlock();
      if (on_text && !on_text(text, logprobs)) job->caller_cancelled = true;
      out.lock();
      continue;
    }
    if (job->finished) break;
    if (job->req.client_gone && job->req.client_gone()) job->caller_cancelled = true;
  }
  if (job->error) std::rethrow_exception(job->error);
  if (timings != nullptr) {
    timings->queue_ms = ms_between(job->arrival, job->started);
    timings->ttft_ms = ms_between(job->arrival, job->first_token);
    timings->total_ms = ms_between(job->arrival, Clock::now());
    const size_t n = job->result.tokens.size();
    timings->tpot_ms = n > 1 ? (timings->total_ms - timings->ttft_ms) / static_cast<double>(n - 1) : 0;
  }
  return job->result;
}

std::vector<QosScheduler::Job*> QosScheduler::by_urgency() {
  std::vector<Job*> order;
  for (const auto& j : jobs_) order.push_back(j.get());
  std::stable_sort(order.begin(), order.end(), [&](Job* a, Job* b) {
    if (a->priority() != b->priority()) return a->priority() > b->priority();
    if (a->begun != b->begun) return a->begun.load();  // running before waiting
    double sa = app_service_[a->req.app_id], sb = app_service_[b->req.app_id];
    if (sa != sb) return sa < sb;
    return a->id < b->id;
  });
  const int64_t max_running = config()->max_running;
  if (static_cast<int64_t>(order.size()) > max_running) order.resize(static_cast<size_t>(max_running));
  return order;
}

void QosScheduler::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    wake_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
    if (jobs_.empty() && stopping_) break;
    tick(lock);
  }
}

// One round of work. Called with mu_ held; releases it while computing.
bool QosScheduler::tick(std::unique_lock<std::mutex>& lock) {
  const std::shared_ptr<const ServiceConfig> cfg = config();
  std::vector<Job*> order = by_urgency();
  const double prefill_cost = stats_.prefill_ms_per_token, decode_cost = stats_.decode_ms_per_step;
  const uint64_t arrivals_seen = arrivals_;  // a request admitted after this is not in `order`
  lock.unlock();

  // Text, and the log-probabilities of the tokens decided since the last
  // hand-over; those wait for the text they complete (the caller gets what
  // is left with the result).
  auto deliver = [](Job* j, const std::string& text) {
    if (text.empty()) return;
    const std::vector<TokenLogprob>& all = j->gen->result().logprobs;
    std::lock_guard<std::mutex> g(j->out_mu);
    j->pending += text;
    j->pending_logprobs.insert(j->pending_logprobs.end(), all.begin() + static_cast<std::ptrdiff_t>(j->logprobs_handed),
                               all.end());
    j->logprobs_handed = all.size();
    j->out_cv.notify_one();
  };
  auto settle = [&](Job* j) {
    j->chunk.reset();  // a chunk in flight is dropped: the sequence stays as before it
    j->engine_done = true;
    j->prompt_left = 0;
    std::lock_guard<std::mutex> g(j->out_mu);
    if (j->gen) j->result = j->gen->result();
    j->finished = true;
    j->out_cv.notify_one();
  };

  // Cancellation and start-up of newly scheduled requests.
  int top_prefill_priority = -1000000;
  for (Job* j : order) {
    if (j->caller_cancelled && !j->engine_done) {
      if (j->gen) j->gen->cancel();
      settle(j);
      continue;
    }
    if (!j->begun) {
      j->begun = true;
      j->started = Clock::now();
      try {
        j->gen = std::make_unique<Generation>(*j->req.sequence, j->req.request);
        j->prompt_left = static_cast<int64_t>(j->gen->prompt_remaining());
      } catch (...) {
        j->error = std::current_exception();
        settle(j);
        continue;
      }
      if (j->gen->done()) {
        j->first_token = Clock::now();
        settle(j);
        continue;
      }
    }
    if (!j->engine_done && j->gen->in_prefill()) top_prefill_priority = std::max(top_prefill_priority, j->priority());
  }

  // Decode one token for every running request not preempted by a more
  // urgent request still reading its prompt: each samples its next token,
  // then all those tokens go through the model in one batched pass
  // (continuous batching: the weights are read once per step, not once per
  // stream).
  double tightest_tpot = 1e18;
  int n_decoded = 0;
  std::vector<Job*> batch;
  std::vector<Sequence*> batch_sequences;
  std::vector<const int32_t*> batch_inputs;  // each job's pending token, then its guesses (prompt lookup)
  std::vector<int64_t> batch_counts;
  std::vector<float*> batch_rows;  // every row's logits, for jobs with guesses; null: the last row's
  for (Job* j : order) {
    if (j->engine_done || j->gen->in_prefill() || j->priority() < top_prefill_priority) continue;
    try {
      // A token left pending by a wrong guess is decided already.
      if (!j->gen->has_pending()) deliver(j, j->gen->decide());
    } catch (...) {
      j->error = std::current_exception();
      settle(j);
      continue;
    }
    ++n_decoded;
    tightest_tpot = std::min(tightest_tpot, j->req.qos.tpot_ms);
    if (j->gen->has_pending()) {
      const std::vector<int32_t>& tokens = j->gen->pending_with_guesses();
      batch.push_back(j);
      batch_sequences.push_back(&j->gen->sequence());
      batch_inputs.push_back(tokens.data());
      batch_counts.push_back(static_cast<int64_t>(tokens.size()));
      batch_rows.push_back(tokens.size() > 1 ? j->gen->guess_rows() : nullptr);
    } else if (j->gen->done()) {
      settle(j);
    }
  }
  const int64_t batch_size = static_cast<int64_t>(batch.size());
  double decode_pass_ms = 0;
  if (!batch.empty()) {
    std::exception_ptr failed;
    const auto d0 = Clock::now();
    try {
      Sequence::eval_batch(batch_sequences.data(), batch_inputs.data(), batch_counts.data(), batch_size,
                           batch_rows.data());
    } catch (...) {
      failed = std::current_exception();
    }
    decode_pass_ms = ms_between(d0, Clock::now());
    for (size_t i = 0; i < batch.size(); ++i) {
      Job* j = batch[i];
      if (failed) {
        j->gen->evaluated();
        j->error = failed;
        settle(j);
        continue;
      }
      if (!batch_rows[i]) {
        j->gen->evaluated();
        continue;
      }
      try {  // decides along the guesses: the text of every one that was right
        deliver(j, j->gen->evaluated_with_rows());
      } catch (...) {
        j->error = std::current_exception();
        settle(j);
        continue;
      }
      if (j->gen->done()) settle(j);
    }
  }

  // Prompt work for the most urgent request reading its prompt. Its chunk
  // runs layer by layer (Sequence::ChunkEval) and yields between layers when
  // a request arrives (a more urgent one then waits one layer, not the
  // chunk) or when the running streams' per-token objective would be missed;
  // the next tick resumes it where it stopped.
  int64_t n_prompt_tokens = 0;
  double chunk_ms = 0;
  for (Job* j : order) {
    if (j->engine_done || !j->gen->in_prefill()) continue;
    const double slice_budget = n_decoded > 0 ? tightest_tpot - decode_pass_ms : 1e18;
    try {
      if (!j->chunk) {
        const int64_t steps = j->req.sequence->model().config().n_layer + 1;
        const int64_t chunk = prompt_chunk_tokens(*cfg, j->priority(), steps, prefill_cost, decode_cost, slice_budget);
        const int32_t* tokens = nullptr;
        const int64_t n = j->gen->next_prompt_tokens(chunk, &tokens);
        j->chunk = std::make_unique<Sequence::ChunkEval>(j->gen->sequence(), tokens, n, j->gen->hidden_rows(n));
        j->chunk_ms = 0;
        j->chunk_step_ms = 0;
      }
      Sequence::ChunkEval& c = *j->chunk;
      // What the next layer will take: as long as the last one did (the
      // average estimate before the first). No step fits: resume later.
      double step_ms = j->chunk_step_ms > 0
                           ? j->chunk_step_ms
                           : prefill_cost * static_cast<double>(c.n_tokens()) / static_cast<double>(c.steps());
      double spent = 0;
      while (!c.done() && arrivals_.load() == arrivals_seen && !j->caller_cancelled &&
             spent + step_ms <= slice_budget) {
        const auto s0 = Clock::now();
        c.step();
        step_ms = ms_between(s0, Clock::now());
        spent += step_ms;
      }
      j->chunk_step_ms = step_ms;
      j->chunk_ms += spent;
      if (c.done()) {
        n_prompt_tokens = c.n_tokens();
        chunk_ms = j->chunk_ms;
        j->chunk.reset();
        j->gen->prompt_evaluated(n_prompt_tokens);
        j->prompt_left = static_cast<int64_t>(j->gen->prompt_remaining());
        if (!j->gen->in_prefill()) j->first_token = Clock::now();
      }
    } catch (...) {
      j->error = std::current_exception();
      settle(j);
    }
    break;
  }

  lock.lock();
  // Measured costs steer chunk sizes and admission (moving averages): a
  // decode pass gives the per-stream step cost, a finished chunk the prompt
  // cost per token.
  if (batch_size > 0) {
    const double per = decode_pass_ms / static_cast<double>(batch_size);
    stats_.decode_ms_per_step = stats_.decode_ms_per_step == 0 ? per : 0.8 * stats_.decode_ms_per_step + 0.2 * per;
  }
  if (n_prompt_tokens > 0) {
    const double per = std::max(0.01, chunk_ms / static_cast<double>(n_prompt_tokens));
    stats_.prefill_ms_per_token =
        stats_.prefill_ms_per_token == 0 ? per : 0.8 * stats_.prefill_ms_per_token + 0.2 * per;
  }
  stats_.prompt_tokens += n_prompt_tokens;
  stats_.generated_tokens += n_decoded;
  if (batch_size > 0) {
    stats_.decode_passes++;
    stats_.max_decode_batch = std::max(stats_.max_decode_batch, batch_size);
  }
  for (Job* j : order) app_service_[j->req.app_id] += j->engine_done ? 0 : 1;
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    Job* j = it->get();
    if (j->engine_done) {
      if (j->result.finish == FinishReason::kCancelled) stats_.cancelled++;
      else stats_.completed++;
      it = jobs_.erase(it);
    } else {
      ++it;
    }
  }
  return true;
}

}  // namespace onellm
