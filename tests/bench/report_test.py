#!/usr/bin/python3
"""Unit test of bench/e2e/report.py on canned input: medians and spreads, explicit
reasons for empty cells, ratios, latency and scaling tables, and real PNG plots."""
import os
import shutil
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench", "e2e"))
import report  # noqa: E402


class ReportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sluice-report-test-")
        shutil.copytree(os.path.join(HERE, "canned"), os.path.join(cls.tmp, "in"))
        cls.report = os.path.join(cls.tmp, "out", "run.md")
        cls.made = report.render(os.path.join(cls.tmp, "in"), cls.report)
        with open(cls.report) as f:
            cls.md = f.read()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def row(self, label):
        rows = [l for l in self.md.splitlines() if l.startswith(f"| {label} |")]
        self.assertEqual(len(rows), 1, label)
        return [c.strip() for c in rows[0].strip("|").split("|")]

    def test_median_and_spread_over_repetitions(self):
        # 1000 events in 0.25, 0.5 and 1.0 s: median 2000/s, spread 1000-4000.
        r = self.row("sluice, DPDK")
        self.assertEqual(r[1], "3/3")
        self.assertEqual(r[2], "2000 /s (1000–4000)")
        self.assertEqual(r[3], "1000")  # events per CPU-second: the same in every rep
        self.assertEqual(r[7], "20.00 ms (10.00–30.00)")
        self.assertEqual(r[8], "100 %")

    def test_binary_rows(self):
        # 990 events (the RX dead letters have no binary form) in 0.33 and 0.495 s.
        r = self.row("sluice, DPDK, binary")
        self.assertEqual(r[1], "2/2")
        self.assertEqual(r[2], "2500 /s (2000–3000)")
        self.assertEqual(r[3], "1980")
        self.assertEqual(r[4], "505 s")
        self.assertEqual(r[6], "12.00 B")
        self.assertEqual(r[8], "100 %")
        r = self.row("sluice, kernel UDP, binary")
        self.assertEqual(r[1], "1/1")
        self.assertEqual(r[2], "1980 /s")
        for label in ("sluice, DPDK, binary", "sluice, kernel UDP, binary"):
            self.assertFalse(any(c.startswith("n/a") for c in self.row(label)), label)
        # Rows in SYSTEMS order: each format beside its JSON row.
        order = [l.split("|")[1].strip() for l in self.md.splitlines()
                 if l.startswith("| sluice")]
        self.assertEqual(order[:4], ["sluice, DPDK", "sluice, DPDK, binary",
                                     "sluice, kernel UDP", "sluice, kernel UDP, binary"])

    def test_binary_correctness_is_reported_against_the_json_run(self):
        self.assertIn("- sluice, DPDK, binary: counters equal the expected outcome in 2/2 runs; "
                      "per-minute-by-page rows identical to the JSON run's in 2/2 runs", self.md)
        self.assertIn("- sluice, kernel UDP, binary: counters equal the expected outcome in 1/1 "
                      "runs; per-minute-by-page rows identical to the JSON run's in 0/1 runs",
                      self.md)
        self.assertIn("990 records in 80 datagrams (90,000 bytes of capture against 300,000 "
                      "for NDJSON); the 10 lines", self.md)

    def test_binary_ratios(self):
        self.assertIn("- sluice DPDK, binary / JSON, events per server CPU-second: 1.98×",
                      self.md)
        self.assertIn("- sluice kernel UDP, binary / JSON, events per server CPU-second: 2.20×",
                      self.md)
        self.assertIn("- sluice DPDK / sluice kernel UDP, binary, events per server CPU-second: "
                      "2.00×", self.md)

    def test_phase_times(self):
        self.assertIn("| build (scripts/bootstrap) | 120.0 s |", self.md)
        self.assertIn("| throughput | 300.5 s |", self.md)
        self.assertIn("| scaling | skipped (--skip-scaling) |", self.md)
        self.assertIn("| **total** | **420.5 s** (7.0 min) |", self.md)

    def test_failed_repetition_counts_but_does_not_poison(self):
        r = self.row("sluice, kernel UDP")
        self.assertEqual(r[1], "1/2")
        self.assertEqual(r[2], "900 /s")
        self.assertEqual(r[5], "10.00 %")

    def test_empty_cells_carry_a_reason(self):
        r = self.row("recvmmsg floor")
        self.assertTrue(r[6].startswith("n/a ["), r[6])
        self.assertIn("stores nothing", self.md)
        self.assertIn("keeps no data", self.md)
        for line in self.md.splitlines():
            if line.startswith("| ") and "|" in line[2:]:
                self.assertNotIn("| – |", line)
                self.assertNotIn("None", line)
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                self.assertTrue(all(cells), f"empty cell: {line}")

    def test_systems_without_runs_are_left_out(self):
        self.assertNotIn("VictoriaMetrics", self.md.split("## Plots")[0].split("| system")[1])

    def test_loss_is_what_went_missing_and_notes_say_why(self):
        self.assertEqual(self.row("InfluxDB 1.x, HTTP")[5], "0.505 %")  # 5 of 990
        self.assertIn("- InfluxDB 1.x, HTTP: 15 points overwrite others", self.md)

    def test_ratios(self):
        self.assertIn("sluice DPDK / sluice kernel UDP, events per server CPU-second: **2.22×**",
                      self.md)
        self.assertIn("sluice DPDK / InfluxDB 1.x, HTTP, events per server CPU-second: 4.1×",
                      self.md)

    def test_clickhouse_and_nats_rows(self):
        # 990 rows in 0.5 and 0.25 s on 0.5 CPU-s each.
        r = self.row("ClickHouse, MergeTree")
        self.assertEqual(r[1], "2/2")
        self.assertEqual(r[2], "2970 /s (1980–3960)")
        self.assertEqual(r[3], "1980")
        self.assertEqual(r[5], "0.000 %")
        self.assertEqual(r[6], "60.00 B")
        self.assertEqual(r[8], "75.00 %")
        r = self.row("ClickHouse, ReplacingMergeTree")
        self.assertEqual(r[3], "3960")
        self.assertEqual(r[5], "0.505 %")  # 5 identities of 965 missing, of 990 sent
        self.assertEqual(r[8], "90.00 %")
        # Peers after the sluice rows, in SYSTEMS order.
        labels = [l.split("|")[1].strip() for l in self.md.split("## Plots")[0].splitlines()
                  if l.startswith("| ") and not l.startswith("| system")]
        self.assertEqual(labels[-4:], ["InfluxDB 1.x, HTTP", "ClickHouse, MergeTree",
                                       "ClickHouse, ReplacingMergeTree",
                                       "NATS JetStream (broker)"])

    def test_broker_has_no_query_and_one_footnote_per_reason(self):
        r = self.row("NATS JetStream (broker)")
        self.assertEqual(r[3], "1980")
        self.assertEqual(r[6], "345 B")
        self.assertTrue(r[7].startswith("n/a ["), r[7])
        self.assertEqual(r[7], r[8])  # the same reason, the same footnote
        self.assertEqual(self.md.count("a broker: stores the events, computes no "
                                       "per-minute-by-page result"), 1)

    def test_peers_say_how_they_were_fed_and_what_they_deferred(self):
        self.assertIn("- ClickHouse, MergeTree: fed JSONEachRow over HTTP, 100,000-row INSERTs "
                      "on 2 connections; server CPU in the 1 s after the last event was taken "
                      "(deferred merges and flushes, not in the table): 0.300 s (0.200–0.400)",
                      self.md)
        self.assertIn("- NATS JetStream (broker): fed NATS client protocol (TCP), HPUB with "
                      "Nats-Msg-Id, at most 4,000 unacknowledged; server CPU in the 1 s", self.md)
        self.assertIn("- ClickHouse, ReplacingMergeTree: 25 of 990 rows repeat an identity",
                      self.md)

    def test_dataset_cardinality_is_stated(self):
        self.assertIn("Cardinality: 990 valid events, 965 distinct identities, 12 distinct "
                      "pages, 30 (page, event_type) series", self.md)

    def test_peer_ratios(self):
        self.assertIn("- sluice DPDK / ClickHouse, MergeTree, events per server CPU-second: 0.5×",
                      self.md)
        self.assertIn("- sluice DPDK / NATS JetStream (broker), events per server CPU-second: "
                      "0.5×", self.md)

    def test_latency_table(self):
        self.assertIn("window_visible p99.9", self.md)
        # Rows of older results (no path) are the kernel path's; each row keeps its
        # exactness, the machine's load and the RX back-pressure waits where it has them.
        self.assertIn("| kernel UDP | 50% | 5000 datagrams/s | 20.0 k | 0 | n/a | n/a | n/a | "
                      "12.00 µs | 50.00 µs | 120 µs | 1.10 ms |", self.md)
        self.assertIn("| kernel UDP | 90% | 9000 datagrams/s | n/a | n/a | n/a | n/a | n/a | "
                      "run failed: RuntimeError: sluiced exited |" + " n/a |" * 5 + "\n", self.md)
        self.assertIn("| DPDK memif | 10% | 1200 frames/s | 4100 | 0 | yes | 1.2 | 0 | "
                      "9.00 µs | 30.00 µs | 70.00 µs |", self.md)
        self.assertIn("| DPDK memif | 50% | 6000 frames/s | 20.5 k | 0 | NO | 2.5 | 1,234 |", self.md)
        # The kernel rows before the DPDK rows.
        self.assertLess(self.md.index("| kernel UDP | 90% |"), self.md.index("| DPDK memif | 10% |"))

    def test_latency_side_by_side(self):
        self.assertIn("| load | kernel UDP window-visible p99 | DPDK memif window-visible p99 |\n"
                      "|---|---|---|\n"
                      "| 10% | 40.00 µs | 30.00 µs |\n"
                      "| 50% | 50.00 µs | 45.00 µs |\n"
                      "| 90% | n/a: run failed | n/a: not run |\n", self.md)

    def test_scaling_table(self):
        self.assertIn("| 2 | 1.90 M/s (1.80 M–2.00 M) | 455.0 k (450.0 k–460.0 k) | yes |",
                      self.md)

    def test_interference_table(self):
        self.assertIn("| 0 | 1.00 M/s | 500.0 k | none (no clients) | yes |", self.md)
        self.assertIn("| 100 | 900.0 k/s | 480.0 k | ok 1,200, error 30,000, failed 0 | yes |",
                      self.md)

    def test_microbenchmarks_use_medians(self):
        self.assertIn("| frame_parse_bench | `bm_parse/ipv4` | 100.00 M/s | 10.00 |", self.md)
        self.assertIn("`bm_parse/ipv6_median` | 50.00 M/s", self.md)
        self.assertNotIn("ipv6_mean", self.md)
        self.assertIn("| missing_bench | n/a: no output (exit code 1) | n/a | n/a |", self.md)
        self.assertIn("| frame_parse_bench | `bm_write/bytes` | n/a: counts bytes, 2.00 GB/s | n/a |",
                      self.md)

    def test_plots_are_png_files(self):
        for name in ("throughput", "cpu", "latency", "scaling"):
            png = self.made[name]
            self.assertTrue(png.endswith(".png"), f"{name}: {png}")
            with open(os.path.join(os.path.dirname(self.report), png), "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
            self.assertIn(f"]({png})", self.md)

    def test_machine_section(self):
        self.assertIn("Model name: Canned CPU", self.md)
        self.assertIn("Command: `scripts/bench --quick`", self.md)


if __name__ == "__main__":
    unittest.main()
