// A persistent thread pool for data-parallel loops. One job at a time: the
// caller publishes (fn, n) under a generation number, wakes the workers, runs
// chunk 0 itself and waits until every chunk is done. Workers sleep on a
// condition variable between jobs; on a small shared machine that costs a few
// microseconds per call but never burns a core spinning.
#include <algorithm>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "base/error.h"
#include "kernels/kernels.h"

namespace onellm {
namespace {

// Set on pool threads and while a caller runs a job, so a nested
// parallel_for (fn calling back into a pool) runs inline instead of
// deadlocking.
thread_local bool t_inside_parallel_for = false;

void chunk_bounds(int64_t n, int n_chunks, int chunk, int64_t* begin, int64_t* end) {
  *begin = n * chunk / n_chunks;
  *end = n * (chunk + 1) / n_chunks;
}

}  // namespace

struct ThreadPool::State {
  std::mutex call_mutex;  // serializes parallel_for calls from different threads
  std::mutex mutex;       // guards everything below
  std::condition_variable work_ready;
  std::condition_variable work_done;
  uint64_t generation = 0;
  const std::function<void(int64_t, int64_t)>* fn = nullptr;
  int64_t n = 0;
  int n_chunks = 0;
  int pending = 0;  // chunks handed to workers and not yet finished
  std::exception_ptr error;
  bool stop = false;
  std::vector<std::thread> workers;

  void stop_and_join() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stop = true;
    }
    work_ready.notify_all();
    for (std::thread& t : workers) t.join();
    workers.clear();
  }

  void worker_loop(int index) {
    t_inside_parallel_for = true;
    uint64_t seen = 0;
    for (;;) {
      const std::function<void(int64_t, int64_t)>* job;
      int64_t begin, end;
      {
        std::unique_lock<std::mutex> lock(mutex);
        work_ready.wait(lock, [&] { return stop || generation != seen; });
        if (stop) return;
        seen = generation;
        if (index >= n_chunks) continue;  // this job has fewer chunks than threads
        job = fn;
        chunk_bounds(n, n_chunks, index, &begin, &end);
      }
      std::exception_ptr failure;
      try {
        (*job)(begin, end);
      } catch (...) {
        failure = std::current_exception();
      }
      std::lock_guard<std::mutex> lock(mutex);
      if (failure && !error) error = failure;
      if (--pending == 0) work_done.notify_one();
    }
  }
};

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads), state_(nullptr) {
  if (n_threads < 1) throw Error("ThreadPool: thread count must be at least 1, got " + std::to_string(n_threads));
  state_ = new State;
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
  const int n_chunks = static_cast<int>(std::min<int64_t>(n, n_threads_));
  if (n_chunks == 1 || t_inside_parallel_for) {
    fn(0, n);
    return;
  }
  State& s = *state_;
  std::lock_guard<std::mutex> call_lock(s.call_mutex);
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    s.fn = &fn;
    s.n = n;
    s.n_chunks = n_chunks;
    s.pending = n_chunks - 1;
    s.error = nullptr;
    ++s.generation;
  }
  s.work_ready.notify_all();

  std::exception_ptr failure;
  int64_t begin, end;
  chunk_bounds(n, n_chunks, 0, &begin, &end);
  t_inside_parallel_for = true;
  try {
    fn(begin, end);
  } catch (...) {
    failure = std::current_exception();
  }
  t_inside_parallel_for = false;

  std::unique_lock<std::mutex> lock(s.mutex);
  s.work_done.wait(lock, [&] { return s.pending == 0; });
  if (!failure) failure = s.error;
  s.fn = nullptr;
  lock.unlock();
  if (failure) std::rethrow_exception(failure);
}

}  // namespace onellm
