"""Medians of the interleaved poll/wait runs (docs/benchmarks.md, "Idle workers and merger
block on an eventfd"): python3 bench/results/2026-12-04-vm-worker-idle-wait/summarize.py
Per row and variant: events/s, events per server CPU-second, its ratio to the same run's
kernel UDP row, produce-ack p50/p99; then per row the wait/poll ratios of adjacent runs."""
# The same summary as the Kafka RX idle-wait A/B's, over this folder's runs.
import os, runpy, sys
here = os.path.dirname(os.path.abspath(__file__))
sys.argv = [sys.argv[0], here]
runpy.run_path(os.path.join(here, '..', '2026-12-04-vm-kafka-idle-wait', 'summarize.py'), run_name='__main__')
