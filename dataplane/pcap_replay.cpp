#include "dataplane/pcap_replay.h"

#include <cstring>

#include <pcap/pcap.h>
#include <rte_dev.h>
#include <rte_devargs.h>
#include <rte_ethdev.h>
#include <rte_kvargs.h>

namespace sluice::dataplane {

result<pcap_replay> count_capture(const std::string& path) {
    char err[PCAP_ERRBUF_SIZE] = "";
    pcap_t* p = pcap_open_offline(path.c_str(), err);
    if (p == nullptr)
        return make_error(errc::not_found, "cannot read capture " + path + ": " + err);
    pcap_replay r;
    r.files.push_back(path);
    pcap_pkthdr* h = nullptr;
    const u_char* data = nullptr;
    int rc;
    while ((rc = pcap_next_ex(p, &h, &data)) == 1) {
        ++r.frames;
        if (h->caplen > r.frame_bytes_max) r.frame_bytes_max = h->caplen;
    }
    std::string why = rc == PCAP_ERROR ? pcap_geterr(p) : "";
    pcap_close(p);
    if (rc == PCAP_ERROR)
        return make_error(errc::io_error, "cannot read capture " + path + ": " + why);
    return r;
}

namespace {
int collect_file(const char*, const char* value, void* arg) {
    static_cast<std::vector<std::string>*>(arg)->emplace_back(value);
    return 0;
}
int read_flag(const char*, const char* value, void* arg) {
    *static_cast<bool*>(arg) = std::strcmp(value, "1") == 0;
    return 0;
}
} // namespace

result<std::optional<pcap_replay>> pcap_replay_of(uint16_t port_id) {
    rte_eth_dev_info info;
    if (rte_eth_dev_info_get(port_id, &info) != 0 || info.device == nullptr)
        return std::optional<pcap_replay>{};
    if (info.driver_name == nullptr || std::strcmp(info.driver_name, "net_pcap") != 0)
        return std::optional<pcap_replay>{};
    const rte_devargs* da = rte_dev_devargs(info.device);
    if (da == nullptr || da->args == nullptr) return std::optional<pcap_replay>{};
    rte_kvargs* kv = rte_kvargs_parse(da->args, nullptr);
    if (kv == nullptr) return std::optional<pcap_replay>{};
    pcap_replay want;
    rte_kvargs_process(kv, "rx_pcap", collect_file, &want.files);
    rte_kvargs_process(kv, "infinite_rx", read_flag, &want.infinite);
    rte_kvargs_free(kv);
    if (want.files.empty()) return std::optional<pcap_replay>{};
    for (const std::string& f : want.files) {
        auto one = count_capture(f);
        if (!one) return std::move(one).err();
        want.frames += one->frames;
        if (one->frame_bytes_max > want.frame_bytes_max) want.frame_bytes_max = one->frame_bytes_max;
    }
    return std::optional<pcap_replay>{std::move(want)};
}

} // namespace sluice::dataplane
