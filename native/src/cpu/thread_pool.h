// A small persistent thread pool for the CPU backend. The calling thread takes part in the
// work, so a pool of size 1 starts no thread at all. No OpenMP: the library must not
// depend on libgomp.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace cm4j {
namespace cpu {

class ThreadPool {
 public:
  // threads: workers including the caller; 0 means std::thread::hardware_concurrency().
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return size_; }

  // Runs fn(task, worker) for every task in [0, n), tasks handed out dynamically; worker
  // in [0, size()) names the thread so tasks can use per-thread scratch. Returns false
  // when a task threw (the other tasks still ran). Calls made from inside a task, or from
  // a second thread while the pool is busy, are serialized rather than nested.
  bool parallel_for(int n, const std::function<void(int task, int worker)>& fn);

 private:
  void worker_loop(int worker);
  void run_tasks(int worker);

  int size_ = 1;
  std::vector<std::thread> threads_;
  std::mutex call_mutex_;  // one parallel_for at a time

  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  uint64_t generation_ = 0;  // bumped per parallel_for; workers run each generation once
  bool stop_ = false;
  int busy_ = 0;  // workers still inside the current generation

  const std::function<void(int, int)>* fn_ = nullptr;
  int n_ = 0;
  std::atomic<int> next_{0};
  std::atomic<bool> failed_{false};
};

}  // namespace cpu
}  // namespace cm4j
