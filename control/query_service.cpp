#include "control/query_service.h"

#include <rte_ring.h>

#include "base/assert.h"
#include "base/backoff.h"
#include "dataplane/eal_setup.h"
#include "dataplane/event_parse.h"

namespace sluice::control {

using namespace processing;

namespace {

constexpr uint32_t partial_buffers_per_worker = 8;
constexpr uint32_t partial_buffer_bytes = 256 * 1024;

// The RX's event parser for stored events: they are parsed again exactly as they were
// received (processing/event_replayer.h).
class rx_parser final : public stored_event_parser {
  public:
    rx_parser(const field_catalog* catalog, uint32_t event_bytes_max)
        : _parser(dataplane::parse_config{event_bytes_max, 0, catalog}) {}
    // A stored event was in the past when received: no future-skew check now.
    void parse(std::string_view raw, event_slot& out) override {
        _parser.parse(raw, INT64_MAX / 2, out);
    }

  private:
    dataplane::event_parser _parser;
};

} // namespace

// A worker's partial rings to the merger and back, and its buffers.
struct query_service::link {
    uint32_t worker = 0;
    rte_ring* to_merger = nullptr;
    rte_ring* free = nullptr;
    idle_wake* merger_wake = nullptr; // [lcores] idle = "wait"
    std::vector<std::unique_ptr<char[]>> buffers;

    // The worker's side (partial_channel).
    static partial_batch* acquire(void* ctx) noexcept {
        auto* l = static_cast<link*>(ctx);
        void* obj = nullptr;
        idle_backoff backoff;
        while (rte_ring_sc_dequeue(l->free, &obj) != 0)
            backoff.wait();
        return static_cast<partial_batch*>(obj);
    }
    static void publish(void* ctx, partial_batch* batch) noexcept {
        auto* l = static_cast<link*>(ctx);
        // Cannot fail: the ring holds more than all of this worker's buffers.
        SLUICE_ASSERT(rte_ring_sp_enqueue(l->to_merger, batch) == 0);
        if (l->merger_wake != nullptr) l->merger_wake->notify();
    }
    // After the worker stored window progress: a waiting merger emits the rows it allows.
    static void progressed(void* ctx) noexcept {
        auto* l = static_cast<link*>(ctx);
        if (l->merger_wake != nullptr) l->merger_wake->notify();
    }
    // The merger's side (partial_inbox).
    static partial_batch* receive(void* ctx) noexcept {
        void* obj = nullptr;
        if (rte_ring_sc_dequeue(static_cast<link*>(ctx)->to_merger, &obj) != 0) return nullptr;
        return static_cast<partial_batch*>(obj);
    }
    static void give_back(void* ctx, partial_batch* batch) noexcept {
        rte_ring_sp_enqueue(static_cast<link*>(ctx)->free, batch);
    }
};

query_service::query_service(const query_service_config& config)
    : _config(config), _registry(config.data_dir, config.default_delay_ms) {}

query_service::~query_service() {
    if (_merger) _merger->join();
}

result<std::unique_ptr<query_service>>
query_service::open(const query_service_config& config, const std::vector<query_def>& configured) {
    std::unique_ptr<query_service> s(new query_service(config));
    std::vector<query_def> queries = configured;
    SLUICE_TRY(s->_registry.load_and_apply(queries));

    merger_config mc;
    mc.data_dir = config.data_dir;
    mc.workers = config.workers;
    mc.event_bytes_max = config.event_bytes_max;
    storage::writer_config& wc = mc.table_writer;
    wc.data_dir = config.data_dir;
    wc.rows_per_block = 4096;
    wc.string_bytes_max = 1u << 20;
    wc.row_string_bytes_max = config.event_bytes_max;
    wc.options = config.storage;
    wc.stop_flag = config.storage_stop;
    mc.make_parser = [event_bytes_max = config.event_bytes_max](const field_catalog* catalog) {
        return parser_factory([catalog, event_bytes_max] {
            return std::make_unique<rx_parser>(catalog, event_bytes_max);
        });
    };
    query_registry* registry = &s->_registry;
    mc.on_added = [registry](const query_def& def) { return registry->added(def); };
    mc.on_removed = [registry](const std::string& name) { return registry->removed(name); };
    auto m = merger::open(std::move(mc), queries);
    if (!m) return std::move(m).err();
    s->_merger = std::move(m.value());
    if (config.idle_wait) {
        s->_merger_wake = std::make_unique<idle_wake>();
        if (!s->_merger_wake->ok())
            return make_error(errc::io_error, "cannot create the merger's wake eventfd");
        s->_merger->set_idle_wake(s->_merger_wake.get());
    }

    for (uint32_t w = 0; w < config.workers; ++w) {
        auto l = std::make_unique<link>();
        l->worker = w;
        auto to_merger = dataplane::spsc_ring_create("w" + std::to_string(w) + "_merge", 64);
        if (!to_merger) return std::move(to_merger).err();
        auto free_ring = dataplane::spsc_ring_create("w" + std::to_string(w) + "_free", 64);
        if (!free_ring) return std::move(free_ring).err();
        l->to_merger = to_merger.value();
        l->free = free_ring.value();
        l->merger_wake = s->_merger_wake.get();
        for (uint32_t b = 0; b < partial_buffers_per_worker; ++b) {
            l->buffers.emplace_back(new char[sizeof(partial_batch) + partial_buffer_bytes]);
            auto* batch = reinterpret_cast<partial_batch*>(l->buffers.back().get());
            batch->capacity = partial_buffer_bytes;
            batch->reset(w, 0);
            rte_ring_sp_enqueue(l->free, batch);
        }
        s->_links.push_back(std::move(l));
    }
    return s;
}

partial_channel query_service::channel(uint32_t worker) noexcept {
    return partial_channel{_links[worker].get(), link::acquire, link::publish, link::progressed};
}

result<void> query_service::attach(const std::vector<worker*>& workers) {
    std::vector<partial_inbox> inboxes;
    for (auto& l : _links)
        inboxes.push_back(partial_inbox{l.get(), link::receive, link::give_back});
    return _merger->attach(workers, std::move(inboxes));
}

} // namespace sluice::control
