// A persistent thread pool for data-parallel loops. One job at a time: the
// caller publishes (fn, n) and bumps a generation counter. Each thread owns a
// contiguous share of the range and takes pieces from its front, so a
// decode matmul's thread streams one run of weights per job and claims
// pieces with atomics on a cache line no other thread writes; a thread whose
// share is done steals the back half of the fullest other share. Shared
// counters cost ~0.2 us per touch between cores here, and the earlier
// design (every chunk claimed from one counter) lost ~5 us per job: a
// 256 x 1536 Q4_0 matmul streamed at 25 GB/s where a plain read loop over
// the same bytes in one job reached 60 (docs/benchmarks.md, session 29).
// A decode step issues a few hundred jobs of tens of microseconds each, so
// waking sleeping threads (a futex round trip, ~50 us per job measured)
// would cost more than the work: workers and the caller spin on the atomics
// for a short while (kSpinNs) before they sleep on a condition variable
// (std::atomic::wait in GCC 12's libstdc++ lost wake-ups here). Between
// tokens the pool goes back to sleep, so an idle pool burns no core.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <memory>
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

// A job's range is cut into at most kMaxUnits units (one unit per item when
// n is smaller), so a share fits 16 bits of a claim word.
constexpr int64_t kMaxUnits = 0xffff;
// A thread takes half of what is left of its share, but never less than
// 1/kMinPieceFraction of the share it started with: ~5 calls per thread, and
// the pieces left for a thief at the end are small.
constexpr int64_t kMinPieceFraction = 16;

// A share: job generation << 32 | first unit << 16 | end unit.
uint64_t share_word(uint32_t gen, int64_t begin, int64_t end) {
  return uint64_t{gen} << 32 | static_cast<uint64_t>(begin) << 16 | static_cast<uint64_t>(end);
}
uint32_t share_gen(uint64_t w) { return static_cast<uint32_t>(w >> 32); }
int64_t share_begin(uint64_t w) { return static_cast<int64_t>((w >> 16) & 0xffff); }
int64_t share_end(uint64_t w) { return static_cast<int64_t>(w & 0xffff); }

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
  // The job. fn, n and units are written by the caller before it publishes
  // the job's shares, and read by a thread only after it has claimed a
  // piece: the job cannot end (and be replaced) while a piece is unfinished.
  const std::function<void(int64_t, int64_t)>* fn = nullptr;
  int64_t n = 0;
  int64_t units = 0;
  // Read before a claim (by a thread that may be late for the job), so
  // atomic; any value gives a valid piece.
  std::atomic<int64_t> min_piece{1};
  int n_threads = 1;
  alignas(64) std::atomic<uint32_t> generation{0};  // bumped per job: wakes the workers
  // Each thread's share (share_word), on its own cache line. Pieces are
  // claimed with a compare-and-swap, so a share goes to whichever thread is
  // running: when other processes hold the cores, the caller steals the
  // share of a worker that was not scheduled instead of waiting for it.
  struct alignas(64) Share {
    std::atomic<uint64_t> word{0};
  };
  std::unique_ptr<Share[]> shares;
  alignas(64) std::atomic<int64_t> finished{0};  // units of the current job done
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

  void run_units(int64_t u0, int64_t u1) {
    const int64_t begin = units == n ? u0 : n * u0 / units, end = units == n ? u1 : n * u1 / units;
    try {
      (*fn)(begin, end);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  }

  // Moves the back half of the fullest other share of job `gen` into
  // thread `self`'s (empty) share; false when no unit is left to take.
  bool steal(uint32_t gen, int self) {
    for (;;) {
      int victim = -1;
      uint64_t vw = 0;
      int64_t most = 0;
      for (int t = 0; t < n_threads; ++t) {
        if (t == self) continue;
        const uint64_t w = shares[t].word.load(std::memory_order_acquire);
        if (share_gen(w) == gen && share_end(w) - share_begin(w) > most) {
          victim = t, vw = w, most = share_end(w) - share_begin(w);
        }
      }
      if (victim < 0) return false;
      const int64_t b = share_begin(vw), e = share_end(vw), take = (e - b + 1) / 2;
      if (!shares[victim].word.compare_exchange_weak(vw, share_word(gen, b, e - take), std::memory_order_acq_rel,
                                                    std::memory_order_acquire))
        continue;
      // Nobody else writes an empty share, so a plain store suffices.
      shares[self].word.store(share_word(gen, e - take, e), std::memory_order_release);
      return true;
    }
  }

  // Runs pieces of job `gen` from thread `self`'s share, then from stolen
  // ones, until no unit is left unclaimed.
  void run_share(uint32_t gen, int self) {
    int64_t done = 0, total = 0;  // total: the job's units, read once a piece is claimed
    std::atomic<uint64_t>& mine = shares[self].word;
    uint64_t w = mine.load(std::memory_order_acquire);
    for (;;) {
      if (share_gen(w) != gen) break;  // a later job: its own wake-up will come
      const int64_t b = share_begin(w), e = share_end(w);
      if (b >= e) {
        if (!steal(gen, self)) break;
        w = mine.load(std::memory_order_acquire);
        continue;
      }
      const int64_t piece = std::min(e - b, std::max(min_piece.load(std::memory_order_relaxed), (e - b + 1) / 2));
      if (!mine.compare_exchange_weak(w, share_word(gen, b + piece, e), std::memory_order_acq_rel,
                                      std::memory_order_acquire))
        continue;  // a thief took the back: w holds the new share
      total = units;
      run_units(b, b + piece);
      done += piece;
      w = mine.load(std::memory_order_acquire);
    }
    if (done > 0 && finished.fetch_add(done, std::memory_order_acq_rel) + done == total) wake(work_done, false);
  }

  void worker_loop(int self) {
    t_inside_parallel_for = true;
    uint32_t seen = 0;  // the generation at construction: a job published before this thread runs still counts
    for (;;) {
      if (!spin_until(spin_ns, [&] { return generation.load(std::memory_order_acquire) != seen; })) {
        std::unique_lock<std::mutex> lock(sleep_mutex);
        work_ready.wait(lock, [&] { return generation.load(std::memory_order_acquire) != seen; });
      }
      seen = generation.load(std::memory_order_acquire);
      if (stop.load()) return;
      run_share(seen, self);
    }
  }
};

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads), state_(nullptr) {
  if (n_threads < 1) throw Error("ThreadPool: thread count must be at least 1, got " + std::to_string(n_threads));
  state_ = new State;
  state_->n_threads = n_threads;
  state_->shares = std::make_unique<State::Share[]>(static_cast<size_t>(n_threads));
  const unsigned cores = std::thread::hardware_concurrency();
  if (cores != 0 && static_cast<unsigned>(n_threads) > cores) state_->spin_ns = 0;
  try {
    for (int i = 1; i < n_threads; ++i) state_->workers.emplace_back(&State::worker_loop, state_, i);
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
  if (n == 1 || n_threads_ == 1 || t_inside_parallel_for) {
    fn(0, n);
    return;
  }
  State& s = *state_;
  std::lock_guard<std::mutex> call_lock(s.call_mutex);
  s.fn = &fn;
  s.n = n;
  s.units = std::min(n, kMaxUnits);
  s.min_piece.store(std::max<int64_t>(1, s.units / (int64_t{n_threads_} * kMinPieceFraction)),
                    std::memory_order_relaxed);
  s.error = nullptr;
  s.finished.store(0, std::memory_order_relaxed);
  const uint32_t gen = s.generation.load(std::memory_order_relaxed) + 1;
  for (int t = 0; t < n_threads_; ++t)
    s.shares[t].word.store(share_word(gen, s.units * t / n_threads_, s.units * (t + 1) / n_threads_),
                           std::memory_order_release);
  s.generation.store(gen, std::memory_order_release);
  s.wake(s.work_ready, true);

  t_inside_parallel_for = true;
  s.run_share(gen, 0);
  t_inside_parallel_for = false;

  auto all_done = [&] { return s.finished.load(std::memory_order_acquire) == s.units; };
  if (!spin_until(s.spin_ns, all_done)) {
    std::unique_lock<std::mutex> lock(s.sleep_mutex);
    s.work_done.wait(lock, all_done);
  }
  const std::exception_ptr failure = s.error;
  s.fn = nullptr;
  if (failure) std::rethrow_exception(failure);
}

}  // namespace onellm
