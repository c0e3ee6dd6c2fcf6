#!/bin/bash
# Usage: NDJSON=events.ndjson profile_run.sh IDLE_WAIT(0|1) IDEM(0|1) LINES [perf]
# The profile and A/B runs of this folder, 2026-12-04: sluiced then took the idle mode from
# SLUICE_KAFKA_IDLE_WAIT (1 = wait, 0 = poll), since replaced by `[lcores] idle`. The same
# run today is ../2026-12-05-vm-kafka-final/profile_run.sh with IDLE=wait or poll.
set -u
IDLE=$([ "$1" = 1 ] && echo wait || echo poll) exec "$(dirname "$0")/../2026-12-05-vm-kafka-final/profile_run.sh" "${@:2}"
