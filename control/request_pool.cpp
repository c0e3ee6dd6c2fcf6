#include "control/request_pool.h"

#include <pthread.h>
#include <unistd.h>

#include <utility>

#include "base/clock.h"

namespace sluice::control {

request_pool::request_pool(uint32_t threads, size_t queue_max, int wake_fd)
    : _queue_max(queue_max), _wake_fd(wake_fd) {
    for (uint32_t i = 0; i < threads; ++i) {
        _threads.emplace_back([this] { run(); });
        pthread_setname_np(_threads.back().native_handle(),
                           ("sluice-ctl-" + std::to_string(i)).c_str());
    }
}

bool request_pool::submit(job j) {
    {
        std::lock_guard lock(_mutex);
        if (_stopping || _queue.size() >= _queue_max) return false;
        _queue.push_back(std::move(j));
    }
    _cv.notify_one();
    return true;
}

std::vector<request_pool::done> request_pool::take_done() {
    std::lock_guard lock(_mutex);
    return std::exchange(_done, {});
}

void request_pool::run() {
    for (;;) {
        job j;
        {
            std::unique_lock lock(_mutex);
            _cv.wait(lock, [&] { return _stopping || !_queue.empty(); });
            if (_stopping) return;
            j = std::move(_queue.front());
            _queue.pop_front();
        }
        // Past its deadline the client has had its error reply already: skip the work.
        if (monotonic_ns() > j.deadline_ns) continue;
        std::string reply = j.run();
        {
            std::lock_guard lock(_mutex);
            _done.push_back({j.id, j.slot, std::move(reply)});
        }
        uint64_t one = 1;
        (void)!::write(_wake_fd, &one, sizeof one);
    }
}

void request_pool::stop() {
    {
        std::lock_guard lock(_mutex);
        if (_stopping && _threads.empty()) return;
        _stopping = true;
        _queue.clear();
    }
    _cv.notify_all();
    for (auto& t : _threads)
        if (t.joinable()) t.join();
    _threads.clear();
}

} // namespace sluice::control
