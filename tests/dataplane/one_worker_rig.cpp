#include "tests/dataplane/one_worker_rig.h"

#include <gtest/gtest.h>

#include <vector>

#include "dataplane/eal_setup.h"

namespace sluice::dataplane::testing {

namespace pt = processing::testing;

std::string event_line(const std::string& event_id, int64_t time_ms) {
    return R"({"event_id":")" + event_id + R"(","user_id":"u","event_type":"page_view",)" +
           R"("timestamp":)" + std::to_string(time_ms) + R"(,"page":"/a"})";
}

one_worker_rig::~one_worker_rig() {
    stop();
    _loop.reset();
    _rx.reset();
    _worker.reset();
    if (_ring) rte_ring_free(_ring);
    if (_pool) rte_mempool_free(_pool);
}

void one_worker_rig::open(const rig_options& o) {
    _dir = std::make_unique<pt::temp_dir>(o.name.c_str());
    auto pool = slot_pool_create(1023, processing::slot_bytes(rig_event_bytes_max));
    ASSERT_TRUE(pool) << pool.err().message;
    _pool = pool.value();
    auto ring = spsc_ring_create(o.name + "_" + std::to_string(_seq++), 1024);
    ASSERT_TRUE(ring) << ring.err().message;
    _ring = ring.value();

    processing::worker_config c;
    c.index = 0;
    c.dedup_memory_bytes = 1 << 20;
    c.event_bytes_max = rig_event_bytes_max;
    c.data_dir = _dir->path;
    c.storage.flush_interval_ms = o.flush_interval_ms;
    _channel = std::make_unique<pt::test_channel>();
    auto w = processing::worker::open(c, _channel->channel());
    ASSERT_TRUE(w) << w.err().message;
    _worker = std::move(w.value());
    processing::query_def q = processing::reference_query();
    q.memory_bytes = 1 << 20;
    if (o.watermark_delay_ms >= 0) q.watermark_delay_ms = o.watermark_delay_ms;
    _query = pt::compile_or_die(q, _catalog, 1, 0, rig_event_bytes_max);
    ASSERT_NE(_query, nullptr);
    auto added =
        _worker->add_query(_query, std::make_unique<processing::window_state>(*_query), INT64_MIN);
    ASSERT_TRUE(added) << added.err().message;
    _catalog.publish();

    rx_config rc;
    rc.parse.event_bytes_max = rig_event_bytes_max;
    rc.parse.fields = &_catalog;
    _rx = std::make_unique<rx_lcore>(rc, _pool, std::vector<rte_ring*>{_ring}, &_stop);
    _control.rx_running.store(1);
    _loop =
        std::make_unique<worker_lcore>(*_worker, std::vector<rte_ring*>{_ring}, _pool, &_control);
}

void one_worker_rig::wait_when_idle(idle_wake& wake, int64_t max_wait_ns) {
    ASSERT_TRUE(_worker->wake_on_completion(wake.fd()));
    _rx->set_worker_wakes({&wake});
    _loop->set_idle_wake(&wake, max_wait_ns);
    _wake = &wake;
}

void one_worker_rig::start() {
    _thread = std::thread([this] { _rc = _loop->run(); });
}

int one_worker_rig::stop() {
    if (!_thread.joinable()) return -1;
    _rx->drain(); // the slots it still holds back to the pool, what it parsed to the ring
    _control.rx_running.store(0);
    if (_wake != nullptr) _wake->notify(); // a long idle wait would end only at its bound
    _thread.join();
    return _rc;
}

void one_worker_rig::send(const std::string& event_id, int64_t time_ms) {
    _rx->begin_burst();
    _rx->handle_event(event_line(event_id, time_ms));
    _rx->flush_all();
}

} // namespace sluice::dataplane::testing
