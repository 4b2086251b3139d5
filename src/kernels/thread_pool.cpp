// A persistent thread pool for data-parallel loops. One job at a time: the
// caller publishes (fn, n) and bumps a generation counter; the caller and the
// workers claim chunks of the range until none is left, and the caller waits
// until every claimed chunk is done. A decode step issues a few
// hundred jobs of tens of microseconds each, so waking sleeping threads (a
// futex round trip, ~50 us per job measured) would cost more than the work:
// workers and the caller spin on the atomics for a short while (kSpinNs)
// before they sleep on a condition variable (std::atomic::wait in GCC 12's
// libstdc++ lost wake-ups here). Between tokens the pool goes
// back to sleep, so an idle pool burns no core.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "base/error.h"
#include "kernels/kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ONELLM_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define ONELLM_CPU_RELAX() __asm__ volatile("yield")
#else
#define ONELLM_CPU_RELAX() ((void)0)
#endif

namespace onellm {
namespace {

// Set on pool threads and while a caller runs a job, so a nested
// parallel_for (fn calling back into a pool) runs inline instead of
// deadlocking.
thread_local bool t_inside_parallel_for = false;

constexpr int64_t kSpinNs = 100'000;
constexpr int kChunksPerThread = 5;

// Units of work before chunk c when a job of n_threads * kChunksPerThread
// chunks is split in rounds that halve: one chunk per thread in each round,
// the rounds taking 1/2, 1/4, ... of the work and the last two the same
// (1/16, 1/16 for five). Whoever finishes first takes the small chunks at
// the end, so a decode matmul's threads finish within 1/32 of it of each
// other instead of the 1/8 equal chunks left; the split stays a function of
// (n, threads) only.
int64_t shrinking_units_before(int chunk, int n_threads) {
  int64_t units = 0;
  for (int c = 0; c < chunk; ++c) {
    const int round = c / n_threads;
    units += int64_t{1} << std::max(0, kChunksPerThread - 2 - round);
  }
  return units;
}

void chunk_bounds(int64_t n, int n_chunks, int n_threads, int chunk, int64_t* begin, int64_t* end) {
  const int64_t total = int64_t{n_threads} << (kChunksPerThread - 1);
  if (n_chunks != n_threads * kChunksPerThread || n < total) {  // too few items for every chunk to get one
    *begin = n * chunk / n_chunks;
    *end = n * (chunk + 1) / n_chunks;
    return;
  }
  *begin = n * shrinking_units_before(chunk, n_threads) / total;
  *end = n * shrinking_units_before(chunk + 1, n_threads) / total;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Spins until pred() holds or spin_ns pass; true if it holds.
template <typename Pred>
bool spin_until(int64_t spin_ns, const Pred& pred) {
  if (spin_ns <= 0) return pred();
  const int64_t start = now_ns();
  for (int i = 1;; ++i) {
    if (pred()) return true;
    ONELLM_CPU_RELAX();
    if (i % 64 == 0) {
      if (now_ns() - start > spin_ns) return pred();
      // More threads than free cores: let the thread we wait for run.
      if (i % 1024 == 0) std::this_thread::yield();
    }
  }
}

}  // namespace

struct ThreadPool::State {
  std::mutex call_mutex;  // serializes parallel_for calls from different threads
  // The job. fn and n are written by the caller before it publishes the job
  // in `claim`, and read by a thread only after it has claimed a chunk: the
  // job cannot end (and be replaced) while one of its chunks is unfinished.
  const std::function<void(int64_t, int64_t)>* fn = nullptr;
  int64_t n = 0;
  int n_threads = 1;
  alignas(64) std::atomic<uint32_t> generation{0};  // bumped per job: wakes the workers
  // generation << 32 | next unclaimed chunk << 16 | chunk count. Threads take
  // chunks with a compare-and-swap, so a chunk goes to whichever thread is
  // running: when other processes hold the cores, the caller does the work
  // of workers that were not scheduled instead of waiting for them.
  alignas(64) std::atomic<uint64_t> claim{0};
  alignas(64) std::atomic<int> finished{0};  // chunks of the current job done
  std::mutex sleep_mutex;  // only for sleeping; the job data needs no lock
  std::condition_variable work_ready, work_done;
  std::mutex error_mutex;
  std::exception_ptr error;
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  // More threads than cores: a spinning thread would only delay the one it
  // waits for, so sleep at once.
  int64_t spin_ns = kSpinNs;

  // Taking the mutex orders the notify after any sleeper's predicate check,
  // so a thread about to sleep cannot miss the change.
  void wake(std::condition_variable& cv, bool all) {
    { std::lock_guard<std::mutex> lock(sleep_mutex); }
    if (all)
      cv.notify_all();
    else
      cv.notify_one();
  }

  void stop_and_join() {
    stop.store(true);
    generation.fetch_add(1, std::memory_order_release);
    wake(work_ready, true);
    for (std::thread& t : workers) t.join();
    workers.clear();
  }

  // Runs chunks of job `gen` until none is left unclaimed.
  void run_chunks(uint32_t gen) {
    uint64_t c = claim.load(std::memory_order_acquire);
    for (;;) {
      if (static_cast<uint32_t>(c >> 32) != gen) return;  // a later job: its own wake-up will come
      const int next = static_cast<int>((c >> 16) & 0xffff), count = static_cast<int>(c & 0xffff);
      if (next >= count) return;
      if (!claim.compare_exchange_weak(c, c + (uint64_t{1} << 16), std::memory_order_acq_rel,
                                       std::memory_order_acquire))
        continue;
      int64_t begin, end;
      chunk_bounds(n, count, n_threads, next, &begin, &end);
      try {
        (*fn)(begin, end);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
      }
      if (finished.fetch_add(1, std::memory_order_acq_rel) + 1 == count) wake(work_done, false);
      c = claim.load(std::memory_order_acquire);
    }
  }

  void worker_loop() {
    t_inside_parallel_for = true;
    uint32_t seen = 0;  // the generation at construction: a job published before this thread runs still counts
    for (;;) {
      if (!spin_until(spin_ns, [&] { return generation.load(std::memory_order_acquire) != seen; })) {
        std::unique_lock<std::mutex> lock(sleep_mutex);
        work_ready.wait(lock, [&] { return generation.load(std::memory_order_acquire) != seen; });
      }
      seen = generation.load(std::memory_order_acquire);
      if (stop.load()) return;
      run_chunks(seen);
    }
  }
};

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads), state_(nullptr) {
  if (n_threads < 1) throw Error("ThreadPool: thread count must be at least 1, got " + std::to_string(n_threads));
  state_ = new State;
  state_->n_threads = n_threads;
  const unsigned cores = std::thread::hardware_concurrency();
  if (cores != 0 && static_cast<unsigned>(n_threads) > cores) state_->spin_ns = 0;
  try {
    for (int i = 1; i < n_threads; ++i) state_->workers.emplace_back(&State::worker_loop, state_);
  } catch (...) {  // could not start a thread: stop the ones that did
    state_->stop_and_join();
    delete state_;
    throw;
  }
}

ThreadPool::~ThreadPool() {
  state_->stop_and_join();
  delete state_;
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  // A few chunks per thread: a thread that is descheduled mid-job holds up
  // at most one chunk, and the last ones are small (chunk_bounds). Callers
  // get the same results for any split.
  const int n_chunks = static_cast<int>(std::min<int64_t>({n, int64_t{n_threads_} * kChunksPerThread, 0xffff}));
  if (n_chunks == 1 || t_inside_parallel_for) {
    fn(0, n);
    return;
  }
  State& s = *state_;
  std::lock_guard<std::mutex> call_lock(s.call_mutex);
  s.fn = &fn;
  s.n = n;
  s.error = nullptr;
  s.finished.store(0, std::memory_order_relaxed);
  const uint32_t gen = s.generation.load(std::memory_order_relaxed) + 1;
  s.claim.store(static_cast<uint64_t>(gen) << 32 | static_cast<uint64_t>(n_chunks), std::memory_order_release);
  s.generation.store(gen, std::memory_order_release);
  s.wake(s.work_ready, true);

  t_inside_parallel_for = true;
  s.run_chunks(gen);
  t_inside_parallel_for = false;

  auto all_done = [&] { return s.finished.load(std::memory_order_acquire) == n_chunks; };
  if (!spin_until(s.spin_ns, all_done)) {
    std::unique_lock<std::mutex> lock(s.sleep_mutex);
    s.work_done.wait(lock, all_done);
  }
  const std::exception_ptr failure = s.error;
  s.fn = nullptr;
  if (failure) std::rethrow_exception(failure);
}

}  // namespace onellm
