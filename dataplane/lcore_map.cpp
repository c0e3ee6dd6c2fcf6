#include "dataplane/lcore_map.h"

#include <algorithm>
#include <charconv>
#include <set>

namespace sluice::dataplane {

namespace {

std::string join(const std::vector<uint16_t>& v) {
    std::string out;
    for (uint16_t q : v)
        out += (out.empty() ? "" : ",") + std::to_string(q);
    return out;
}

std::string lcore_list_text(const std::vector<unsigned>& v) {
    std::string out;
    for (unsigned l : v)
        out += (out.empty() ? "" : ",") + std::to_string(l);
    return out;
}

const lcore_info* find(const std::vector<lcore_info>& available, unsigned lcore) {
    for (const auto& l : available)
        if (l.lcore == lcore) return &l;
    return nullptr;
}

result<void> check_explicit(const std::vector<lcore_info>& available,
                            const std::vector<unsigned>& list, const char* option,
                            std::set<unsigned>& taken) {
    for (unsigned l : list) {
        if (find(available, l) == nullptr) {
            std::vector<unsigned> ids;
            for (const auto& a : available)
                ids.push_back(a.lcore);
            return make_error(errc::bad_config, std::string(option) + " names lcore " +
                                                    std::to_string(l) +
                                                    ", which EAL was not given (worker lcores: " +
                                                    lcore_list_text(ids) + "; add it to --lcores)");
        }
        if (!taken.insert(l).second)
            return make_error(errc::bad_config, "lcore " + std::to_string(l) +
                                                    " is listed twice in the RX and worker lcore "
                                                    "lists (give each lcore one role)");
    }
    return ok_result();
}

} // namespace

result<lcore_map> plan_lcore_map(const std::vector<lcore_info>& available,
                                 const rx_source_caps& caps, const lcore_request& req,
                                 uint32_t rx_lcores_max, uint32_t workers_max) {
    std::set<unsigned> taken;
    SLUICE_TRY(check_explicit(available, req.rx_lcores, "rx_lcores", taken));
    SLUICE_TRY(check_explicit(available, req.worker_lcores, "worker_lcores", taken));
    std::vector<unsigned> free;
    for (const auto& l : available)
        if (!taken.count(l.lcore)) free.push_back(l.lcore);

    const uint32_t queue_cap = caps.max_rx_queues == 0 ? UINT32_MAX : caps.max_rx_queues;
    std::vector<unsigned> rx = req.rx_lcores;
    if (rx.empty()) {
        uint32_t n = req.rx_count;
        if (n == 0) {
            const bool workers_fixed = !req.worker_lcores.empty() || req.worker_count > 0;
            const uint32_t lcores = uint32_t(free.size());
            // Workers fixed: the lcores they leave are RX lcores (up to the queue limit).
            const uint32_t by_count = req.worker_lcores.empty() ? req.worker_count : 0;
            if (workers_fixed)
                n = lcores > by_count ? lcores - by_count : 1;
            else
                n = (lcores + workers_per_rx) / (workers_per_rx + 1); // ceil(L / 5)
            n = std::max<uint32_t>(1, std::min({n, queue_cap, rx_lcores_max}));
            if (req.rx_queues) n = std::min<uint32_t>(n, req.rx_queues);
        }
        if (free.size() < n)
            return make_error(errc::bad_config,
                              "sluiced needs " + std::to_string(n) +
                                  " RX lcore(s) and at least one worker lcore besides the main "
                                  "lcore, but EAL gave " +
                                  std::to_string(available.size()) +
                                  " (pass more with --lcores, e.g. '0@0,1@0,2@1'; lcores may "
                                  "share a core)");
        rx.assign(free.begin(), free.begin() + n);
        free.erase(free.begin(), free.begin() + n);
    }

    std::vector<unsigned> workers = req.worker_lcores;
    if (workers.empty()) {
        const uint32_t n = req.worker_count ? req.worker_count : uint32_t(free.size());
        if (n == 0 || free.size() < n)
            return make_error(errc::bad_config,
                              "sluiced needs " + std::to_string(rx.size()) + " RX and " +
                                  std::to_string(std::max<uint32_t>(n, 1)) +
                                  " worker lcore(s) besides the main lcore, but EAL gave " +
                                  std::to_string(available.size()) +
                                  " (pass more with --lcores, e.g. '0@0,1@0,2@1,3@1'; lcores "
                                  "may share a core; or lower --workers/--rx)");
        workers.assign(free.begin(), free.begin() + n);
        free.erase(free.begin(), free.begin() + n);
    }
    if (rx.size() > rx_lcores_max)
        return make_error(errc::bad_config, "at most " + std::to_string(rx_lcores_max) +
                                                " RX lcores are supported, asked for " +
                                                std::to_string(rx.size()));
    if (workers.size() > workers_max)
        return make_error(errc::bad_config, "at most " + std::to_string(workers_max) +
                                                " workers are supported, asked for " +
                                                std::to_string(workers.size()));

    const uint32_t queues = req.rx_queues ? req.rx_queues : uint32_t(rx.size());
    if (queues > queue_cap)
        return make_error(errc::bad_config,
                          caps.name + " has " + std::to_string(caps.max_rx_queues) +
                              " RX queue(s), but " + std::to_string(queues) +
                              " are needed (one per RX lcore at least): use fewer RX lcores "
                              "(--rx) or give the device more queues");
    if (queues < rx.size())
        return make_error(errc::bad_config,
                          std::to_string(queues) + " RX queue(s) cannot feed " +
                              std::to_string(rx.size()) +
                              " RX lcores (raise --rx-queues or use fewer RX lcores)");
    if (queues > UINT16_MAX)
        return make_error(errc::bad_config, "too many RX queues: " + std::to_string(queues));

    lcore_map map;
    map.source = caps.name;
    map.rx_queues = uint16_t(queues);
    map.rss = queues > 1 && caps.rss;
    for (unsigned l : rx)
        map.rx.push_back({l, find(available, l)->cpus, {}});
    for (uint32_t q = 0; q < queues; ++q)
        map.rx[q % rx.size()].queues.push_back(uint16_t(q));
    for (unsigned l : workers)
        map.workers.push_back({l, find(available, l)->cpus});
    map.unused = free;
    return map;
}

std::vector<std::string> lcore_map::describe() const {
    std::vector<std::string> lines;
    std::string spread = rx_queues == 1 ? "one queue"
                         : rss          ? "RSS over IP/UDP flows"
                                        : "no RSS: the device picks the queue";
    lines.push_back("input " + source + ": " + std::to_string(rx_queues) + " RX queue(s), " +
                    spread + "; " + std::to_string(rx.size()) + " RX lcore(s), " +
                    std::to_string(workers.size()) + " worker lcore(s)");
    const std::string all_workers = "workers 0.." + std::to_string(workers.size() - 1);
    for (size_t r = 0; r < rx.size(); ++r)
        lines.push_back("  lcore " + std::to_string(rx[r].lcore) + ": rx " + std::to_string(r) +
                        (rx[r].queues.size() == 1 ? " (queue " : " (queues ") + join(rx[r].queues) +
                        ") -> " + all_workers + ", cpu " + rx[r].cpus);
    for (size_t w = 0; w < workers.size(); ++w)
        lines.push_back("  lcore " + std::to_string(workers[w].lcore) + ": worker " +
                        std::to_string(w) + " <- rings from " + std::to_string(rx.size()) +
                        " RX lcore(s), cpu " + workers[w].cpus);
    for (unsigned l : unused)
        lines.push_back("  lcore " + std::to_string(l) + ": unused");
    return lines;
}

result<std::vector<unsigned>> parse_lcore_list(const std::string& text) {
    std::vector<unsigned> out;
    auto bad = [&] {
        return make_error(errc::invalid_argument,
                          "cannot read lcore list '" + text +
                              "' (write lcore ids and ranges, e.g. 1,2 or 3-6)");
    };
    size_t pos = 0;
    while (pos <= text.size()) {
        size_t comma = text.find(',', pos);
        if (comma == std::string::npos) comma = text.size();
        std::string item = text.substr(pos, comma - pos);
        if (item.empty()) return bad();
        unsigned lo = 0, hi = 0;
        size_t dash = item.find('-');
        const char* b = item.data();
        const char* e = b + item.size();
        if (dash == std::string::npos) {
            auto [p, ec] = std::from_chars(b, e, lo);
            if (ec != std::errc() || p != e) return bad();
            hi = lo;
        } else {
            auto [p1, ec1] = std::from_chars(b, b + dash, lo);
            auto [p2, ec2] = std::from_chars(b + dash + 1, e, hi);
            if (ec1 != std::errc() || p1 != b + dash || ec2 != std::errc() || p2 != e || hi < lo)
                return bad();
        }
        if (hi - lo > 1024) return bad();
        for (unsigned l = lo; l <= hi; ++l)
            out.push_back(l);
        pos = comma + 1;
    }
    return out;
}

} // namespace sluice::dataplane
