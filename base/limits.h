#pragma once
// Every queue, ring, batch and in-flight operation has a named bound here
// (TigerBeetle: "put a limit on everything"). Runtime-configurable values have their
// default and their hard maximum side by side.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sluice::limits {

// Dataplane.
inline constexpr uint32_t rx_burst_max = 64;           // mbufs per rte_eth_rx_burst
inline constexpr uint32_t ring_burst_max = 64;         // slots per ring enqueue/dequeue
inline constexpr uint32_t ring_size = 4096;            // slots per (RX, worker) rte_ring
inline constexpr uint32_t rx_lcores_max = 16;
inline constexpr uint32_t workers_max = 64;
inline constexpr uint32_t mbuf_pool_size = 8191;       // per port
inline constexpr uint32_t rx_descriptors = 1024;       // per RX queue
inline constexpr uint32_t event_bytes_default = 4096;  // larger events are `oversize`
inline constexpr uint32_t event_bytes_max = 65536;
inline constexpr uint32_t udp_payload_max = 65535;

// Kernel UDP path (io_uring).
inline constexpr uint32_t kernel_rx_buffers = 1024;    // provided buffers
inline constexpr uint32_t kernel_rx_buffer_bytes = 65536;

// Kafka listener (dataplane/kafka/): TCP through io_uring on one Kafka RX lcore.
inline constexpr uint32_t kafka_listen_addresses_max = 8;
inline constexpr uint32_t kafka_connections_default = 1024;  // open at once; more are refused
inline constexpr uint32_t kafka_connections_max = 65536;
// A request frame larger than this closes its connection (Kafka's socket.request.max.bytes).
inline constexpr uint32_t kafka_request_bytes_default = 16u << 20;
inline constexpr uint32_t kafka_request_bytes_max = 256u << 20;
// Requests read but not yet answered, per connection (clients pipeline 5 at most);
// at the limit the connection is not read.
inline constexpr uint32_t kafka_inflight_per_connection = 8;
// Complete frames per connection whose arrival time is remembered separately (for the
// produce-ack latency); beyond it the newest stamp covers the later frames too (their
// latency is then overstated, never understated).
inline constexpr uint32_t kafka_frame_stamps = 16;
inline constexpr uint32_t kafka_recv_buffers = 256;          // provided buffers, all connections
inline constexpr uint32_t kafka_recv_buffer_bytes = 64u << 10;
inline constexpr uint32_t kafka_connection_buffer_initial = 64u << 10; // grows up to a frame
// What a paused connection may still receive while its read is being cancelled; beyond
// it the connection is closed (counted as overrun). A multishot receive drains the socket
// into every free provided buffer within one io_uring_enter before the cancel can land, so
// this is the whole pool: less closed pipelining clients that never read (kafka_hostile_test).
inline constexpr uint32_t kafka_connection_slack_bytes = kafka_recv_buffers * kafka_recv_buffer_bytes;
// A Kafka connection being closed keeps its descriptor until its last operation has
// completed; at most this many such descriptors are held beside connections_max (more
// new connections are refused meanwhile). Counted in the descriptor budget below.
inline constexpr uint32_t kafka_closing_fds_max = 16;
// An accept that failed for want of descriptors or memory is retried after this long.
inline constexpr int64_t kafka_accept_retry_ms = 50;
// A loop that blocks when idle ([lcores] idle = "wait") blocks at most this long, then
// looks at what has no wake-up of its own (the stop flag, flush requests, mailbox
// commands, idle connections). The Kafka RX blocks in its io_uring (received bytes,
// accepts, the workers' durability eventfd); a worker or the merger on its idle_wake
// (base/idle_wake.h: bursts handed over, its writers' completions), bounded as well by
// its next group commit.
inline constexpr uint32_t idle_wait_us = 1000;
inline constexpr uint32_t kafka_response_bytes_max = 1u << 20;  // one response (metadata of many topics)
inline constexpr uint32_t kafka_topics_max = 1024;              // configured + auto-created
inline constexpr uint32_t kafka_partitions_max = 1024;          // per topic
inline constexpr uint32_t kafka_parked_acks_max = 4096;         // acks=all answers awaiting durability
// Idempotent producers: (producer id, topic, partition) sequence states kept at once; the
// least recently used is forgotten beyond (its producer is then accepted at any sequence).
inline constexpr uint32_t kafka_producer_partitions_max = 65536;
// Batches remembered per producer and partition for duplicate detection (Kafka keeps 5).
inline constexpr uint32_t kafka_producer_batches_kept = 5;
// Producer ids reserved per write of <data_dir>/_kafka/producer_ids.
inline constexpr int64_t kafka_producer_id_block = 4096;
// Consumers: RecordBatches recently built from the store, kept by the fetch reader
// (dataplane/kafka/fetch_server.h) so that consumers reading the same offsets do not decode
// the same blocks again; least recently used dropped beyond this many bytes.
inline constexpr size_t kafka_fetch_cache_bytes = 64u << 20;

// Processing.
inline constexpr int64_t watermark_delay_ms_default = 10 * 60 * 1000;
inline constexpr int64_t dedup_horizon_ms_default = 60 * 60 * 1000;
inline constexpr int64_t max_future_skew_ms_default = 5 * 60 * 1000;
inline constexpr uint64_t dedup_memory_bytes_default = 256ull << 20;  // all workers together
inline constexpr uint32_t open_windows_max = 4096;     // per worker per query
inline constexpr uint32_t group_keys_max = 1u << 20;   // per worker per query
inline constexpr uint32_t queries_max = 32;            // continuous queries at once
inline constexpr uint32_t query_fields_max = 16;       // distinct extracted fields, all queries
inline constexpr uint32_t hopping_windows_per_event_max = 64;
inline constexpr uint32_t floor_epochs_max = 256;       // per query: runs whose floor is kept
inline constexpr uint32_t aggregate_state_bytes_max = 160u << 10; // per window cell
// RX bursts whose rows may await fsync at once on one worker, for the durable latency
// (16 B each; more are attributed to the newest: overstated, never understated).
inline constexpr uint32_t latency_pending_runs_max = 1u << 16;

// Storage.
inline constexpr uint32_t batch_rows_max = 16384;      // rows per block
inline constexpr size_t batch_string_bytes_max = 8u << 20;
inline constexpr uint32_t uring_depth = 64;
inline constexpr uint32_t writes_in_flight_max = 4;    // per segment writer
inline constexpr uint64_t segment_bytes_max = 256ull << 20;
inline constexpr uint32_t flush_interval_ms_default = 100;
inline constexpr uint64_t sync_bytes_default = 8u << 20; // group commit by size
inline constexpr uint32_t disk_full_retry_ms = 100;      // parked writes retried this often
inline constexpr uint32_t disk_full_stop_wait_ms = 10000; // then a stopping writer gives up
// sluiced does not start with less free on the data dir's filesystem (control/preflight.h):
// the first segments are created at start, and on a full disk they would park (above)
// before the control socket is up. 1 MiB: every table's first segment header and blocks,
// so sluiced starts and is seen; then a full disk is handled live (disk_full above, the
// StorageDiskFull test starts with ~1.5 MiB free).
inline constexpr uint64_t data_dir_free_bytes_min = 1u << 20;
// How long sluiced waits at start for a taken kernel UDP port to come free before it
// says so (dataplane/kernel_udp_rx.h check_udp_port_free): the port of a sluiced that
// just died stays bound until the kernel has torn its io_uring down.
inline constexpr uint32_t udp_port_release_wait_ms = 3000;

// Control plane.
inline constexpr size_t control_request_bytes_max = 64 * 1024;
inline constexpr uint32_t control_clients_max = 256;
// Fewer control clients than this fit in the descriptor budget: sluiced does not start.
inline constexpr uint32_t control_clients_min = 4;
// Requests per second, all clients together and per connection (one second's worth may
// come in a burst); more get a "rate limited" error reply. Configurable; 0 = unlimited.
inline constexpr uint32_t control_requests_per_s_default = 2000;
inline constexpr uint32_t control_connection_requests_per_s_default = 200;
// A connection with no complete request for this long is closed (slots are scarce).
inline constexpr uint32_t control_idle_timeout_ms_default = 60'000;
// A control socket that still accepts connections this long is a live daemon's; a daemon
// killed with SIGKILL may accept for a moment while the kernel tears its io_uring down.
inline constexpr int control_socket_settle_ms = 3'000;
// Control commands that may block (flush, queries, windows, replay) run on this many
// threads, at most this many waiting; each is answered within the deadline (flush and
// the query service give up after 10 s themselves, so their own error comes first).
inline constexpr uint32_t control_slow_threads = 2;
inline constexpr size_t control_slow_queue_max = 64;
inline constexpr uint32_t control_slow_deadline_ms = 15'000;
// Stats history: one sample per second, for rates and recent latency percentiles.
inline constexpr uint32_t stats_samples_max = 11;

// Prometheus' HTTP endpoint (control/metrics_http.h): civetweb's threads serve one
// connection each, so a client that stalls holds one of them until its timeout.
inline constexpr uint32_t metrics_http_threads = 4;
inline constexpr size_t metrics_http_request_bytes_max = 8 * 1024; // request line + headers
inline constexpr uint32_t metrics_http_request_timeout_ms = 10'000; // to read one request
inline constexpr uint32_t metrics_http_keep_alive_timeout_ms = 30'000; // idle between requests

// File descriptors (control/fd_budget.h): clients never take the descriptors the store
// needs. At start sluiced counts the descriptors open once the store is up, keeps these
// free for what the store and the servers may still open, and caps control clients and
// Kafka connections to what is left of RLIMIT_NOFILE.
// Per table writer open at start: its directory, opened for a sync at each rotation.
inline constexpr uint32_t fd_writer_rotation = 1;
// Per table writer that may still be added (`queries add` up to queries_max, `replay`):
// its segment, its io_uring and its directory.
inline constexpr uint32_t fd_writer_added = 3;
// The rest the store opens while it runs, all users at once: segment readers (queries,
// windows, replay, Kafka fetches, sluicectl export's flush), retention's scans and
// footers, files replaced whole (checkpoints, queries.json, the Kafka sequence journal
// and producer ids, consumer offsets: a temporary and its directory each), directory
// listings for stats, /proc reads.
inline constexpr uint32_t fd_store_headroom = 64;
// The control server's own: its socket, its io_uring, two eventfds, a refused client
// being told why, one spare.
inline constexpr uint32_t fd_control_server = 6;
// The Prometheus endpoint's: its socket, one connection per thread, civetweb's accept
// queue (20 by default).
inline constexpr uint32_t fd_metrics_http = 2 + metrics_http_threads + 20;
// Kafka beside its connections: the closing ones above, and per listen address the one
// connection an accept has taken and the loop not yet seen (accepts are single-shot).
inline constexpr uint32_t fd_kafka_listener = kafka_listen_addresses_max + kafka_closing_fds_max;

// Defaults of the configuration keys (control/config.h, docs/sluiced.toml) that have no
// bound above; the others sit beside their maximum in the sections above.
inline constexpr std::string_view data_dir_default = "/var/lib/sluice";
inline constexpr std::string_view control_socket_default = "/run/sluice/sluiced.sock";
inline constexpr uint32_t control_socket_mode_default = 0600;
inline constexpr uint16_t udp_port_default = 9000;
inline constexpr std::string_view kernel_bind_default = "127.0.0.1";
inline constexpr uint32_t kernel_rcvbuf_bytes_default = 32u << 20; // SO_RCVBUF per socket
inline constexpr uint32_t kafka_idle_timeout_ms_default = 10 * 60 * 1000; // 0 = never
inline constexpr uint32_t retention_interval_ms_default = 1000;
inline constexpr uint32_t log_rate_limit_burst_default = 10; // lines per call site, 0 = no limit
inline constexpr uint32_t log_rate_limit_interval_ms_default = 5000;

} // namespace sluice::limits
