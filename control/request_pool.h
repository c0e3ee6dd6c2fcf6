#pragma once
// A small fixed pool of plain threads (never lcores) for the control commands that may
// block: a flush waiting for fsyncs, a table scan, a wait on the merger. The control
// server's io_uring loop hands them here and goes on serving other clients; a finished
// job's reply is queued back and the loop is woken through an eventfd.
#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sluice::control {

class request_pool {
  public:
    struct job {
        uint64_t id;                      ///< the request, unique for the server's lifetime
        uint32_t slot;                    ///< the connection that waits for it
        int64_t deadline_ns;              ///< monotonic; a job still queued past it is not run
        std::function<std::string()> run; ///< returns the encoded reply
    };
    struct done {
        uint64_t id;
        uint32_t slot;
        std::string reply;
    };

    /// Starts `threads` threads; at most `queue_max` jobs wait; `wake_fd` (an eventfd) is
    /// written once per finished job.
    request_pool(uint32_t threads, size_t queue_max, int wake_fd);
    ~request_pool() { stop(); }
    request_pool(const request_pool&) = delete;
    request_pool& operator=(const request_pool&) = delete;

    /// Queues `j`; false when `queue_max` jobs are already waiting (the caller answers busy).
    bool submit(job j);
    /// The replies finished since the last call, oldest first.
    std::vector<done> take_done();
    /// Drops the queued jobs, waits for the running ones and joins the threads.
    void stop();

  private:
    void run();

    size_t _queue_max;
    int _wake_fd;
    std::mutex _mutex;
    std::condition_variable _cv;
    std::deque<job> _queue;
    std::vector<done> _done;
    bool _stopping = false;
    std::vector<std::thread> _threads;
};

} // namespace sluice::control
