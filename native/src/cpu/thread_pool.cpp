#include "cpu/thread_pool.h"

namespace cm4j {
namespace cpu {

namespace {
// The pool and worker slot whose tasks this thread is running, so that a nested
// parallel_for on the same pool runs inline (on the same scratch slot) instead of
// deadlocking on call_mutex_.
thread_local const ThreadPool* t_pool = nullptr;
thread_local int t_worker = 0;

struct InsidePool {
  InsidePool(const ThreadPool* pool, int worker) : saved_pool(t_pool), saved_worker(t_worker) {
    t_pool = pool;
    t_worker = worker;
  }
  ~InsidePool() {
    t_pool = saved_pool;
    t_worker = saved_worker;
  }
  const ThreadPool* saved_pool;
  int saved_worker;
};
}  // namespace

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());
  size_ = threads < 1 ? 1 : threads;
  threads_.reserve(size_ - 1);
  for (int w = 1; w < size_; ++w) threads_.emplace_back([this, w] { worker_loop(w); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::run_tasks(int worker) {
  for (;;) {
    const int task = next_.fetch_add(1, std::memory_order_relaxed);
    if (task >= n_) return;
    try {
      (*fn_)(task, worker);
    } catch (...) {
      failed_.store(true, std::memory_order_relaxed);
    }
  }
}

void ThreadPool::worker_loop(int worker) {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
    }
    {
      InsidePool inside(this, worker);
      run_tasks(worker);
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (--busy_ == 0) done_.notify_one();
    }
  }
}

bool ThreadPool::parallel_for(int n, const std::function<void(int, int)>& fn) {
  if (n <= 0) return true;
  // Inline when there is nothing to share or when nested inside one of our own tasks.
  const bool nested = t_pool == this;
  if (size_ == 1 || n == 1 || nested) {
    const int worker = nested ? t_worker : 0;
    bool ok = true;
    for (int i = 0; i < n; ++i) {
      try {
        fn(i, worker);
      } catch (...) {
        ok = false;
      }
    }
    return ok;
  }
  std::lock_guard<std::mutex> call_lock(call_mutex_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    fn_ = &fn;
    n_ = n;
    next_.store(0, std::memory_order_relaxed);
    failed_.store(false, std::memory_order_relaxed);
    busy_ = size_ - 1;
    ++generation_;
  }
  wake_.notify_all();
  {
    InsidePool inside(this, 0);
    run_tasks(0);
  }
  {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return busy_ == 0; });
    fn_ = nullptr;
  }
  return !failed_.load(std::memory_order_relaxed);
}

}  // namespace cpu
}  // namespace cm4j
