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

    def test_latency_table(self):
        self.assertIn("window_visible p99.9", self.md)
        self.assertIn("| 50% | 5000 | 20.0 k | 0 | 12.00 us | 50.00 us | 120 us | 1100 us |",
                      self.md)
        self.assertIn("| 90% | 9000 | n/a | n/a | run failed: RuntimeError: sluiced exited |",
                      self.md)

    def test_scaling_table(self):
        self.assertIn("| 2 | 1.90 M/s (1.80 M–2.00 M) | 455.0 k (450.0 k–460.0 k) | yes |",
                      self.md)

    def test_microbenchmarks_use_medians(self):
        self.assertIn("| frame_parse_bench | `bm_parse/ipv4` | 100.00 M/s | 10.00 |", self.md)
        self.assertIn("`bm_parse/ipv6_median` | 50.00 M/s", self.md)
        self.assertNotIn("ipv6_mean", self.md)
        self.assertIn("| missing_bench | n/a: no output (exit code 1) | | |", self.md)

    def test_plots_are_png_files(self):
        for name in ("throughput", "latency", "scaling"):
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
