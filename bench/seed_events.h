#pragma once
// Seed-shaped events (SPEC §2.1) for the stage benchmarks: deterministic, varied, about
// 250 bytes of NDJSON each. Pages follow a Zipf(1) law over 500 paths, because a
// benchmark over uniform keys would flatter every hash table it touches.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

namespace sluice::bench {

inline constexpr uint32_t pages = 500;
// 2025-02-28T15:00:00Z, the reference architecture's day.
inline constexpr int64_t base_time_ms = 1740754800000;

inline uint64_t splitmix64(uint64_t& state) noexcept {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// Draws page ranks 0..pages-1 with P(rank r) proportional to 1 / (r + 1).
class zipf_pages {
  public:
    zipf_pages() {
        double sum = 0;
        for (uint32_t r = 0; r < pages; ++r) _cdf.push_back(sum += 1.0 / (r + 1));
        for (double& c : _cdf) c /= sum;
    }
    uint32_t draw(uint64_t& rng) const {
        double u = double(splitmix64(rng) >> 11) * 0x1.0p-53;
        auto it = std::upper_bound(_cdf.begin(), _cdf.end(), u);
        return uint32_t(std::min<size_t>(it - _cdf.begin(), pages - 1));
    }

  private:
    std::vector<double> _cdf;
};

inline std::string page_path(uint32_t rank) {
    static const char* const sections[] = {"/products/", "/category/", "/blog/", "/help/"};
    return sections[rank % 4] + std::to_string(1000 + rank * 7);
}

struct seed_event {
    std::string json;
    int64_t time_ms;
    std::string user_id;
    std::string event_type;
    std::string page;
    std::string event_id; // empty: none
    std::string metadata; // the metadata object's JSON text
};

inline std::string rfc3339_ms(int64_t ms) {
    time_t secs = time_t(ms / 1000);
    tm t{};
    gmtime_r(&secs, &t);
    char buf[64]; // room for any int the format could print
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", t.tm_year + 1900,
                  t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, int(ms % 1000));
    return buf;
}

// n events, event time rising by 0..15 ms per event; with_event_id adds a 36-character
// `event_id`, which then becomes the identity.
inline std::vector<seed_event> make_seed_events(size_t n, bool with_event_id = false,
                                                uint64_t seed = 1) {
    static const char* const types[] = {"page_view", "page_view", "page_view", "page_view",
                                        "click",     "click",     "add_to_cart", "search",
                                        "purchase",  "scroll"};
    static const char* const agents[] = {
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/122.0",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_3) AppleWebKit/605.1.15 Safari/17.3",
        "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) Mobile/15E148",
    };
    static const char* const referrers[] = {"https://www.google.com", "https://www.bing.com",
                                            "https://news.ycombinator.com", ""};
    zipf_pages zipf;
    uint64_t rng = seed;
    int64_t t = base_time_ms;
    std::vector<seed_event> out;
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        seed_event e;
        t += int64_t(splitmix64(rng) % 16);
        e.time_ms = t;
        e.user_id = std::to_string(10000 + splitmix64(rng) % 990000);
        e.event_type = types[splitmix64(rng) % 10];
        e.page = page_path(zipf.draw(rng));
        std::string& j = e.json;
        j = "{";
        if (with_event_id) {
            char id[40];
            uint64_t a = splitmix64(rng), b = splitmix64(rng);
            std::snprintf(id, sizeof id, "%08x-%04x-%04x-%04x-%012llx", uint32_t(a),
                          uint32_t(a >> 32) & 0xffff, uint32_t(a >> 48), uint32_t(b) & 0xffff,
                          (unsigned long long)(b >> 16));
            e.event_id = id;
            j += "\"event_id\":\"" + std::string(id) + "\",";
        }
        e.metadata = std::string("{\"user_agent\":\"") + agents[splitmix64(rng) % 4] +
                     "\",\"referrer\":\"" + referrers[splitmix64(rng) % 4] + "\"}";
        j += "\"user_id\":\"" + e.user_id + "\",\"event_type\":\"" + e.event_type +
             "\",\"timestamp\":\"" + rfc3339_ms(t) + "\",\"page\":\"" + e.page +
             "\",\"metadata\":" + e.metadata + "}";
        out.push_back(std::move(e));
    }
    return out;
}

inline double mean_bytes(const std::vector<seed_event>& events) {
    double sum = 0;
    for (const auto& e : events) sum += double(e.json.size());
    return events.empty() ? 0 : sum / double(events.size());
}

} // namespace sluice::bench
