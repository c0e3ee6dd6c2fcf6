#!/bin/bash
# Interleaved A/B of the worker sleeping while a wanted commit is in flight (docs/
# benchmarks.md, "The worker spun through acks=all commits"): main's sluiced against the
# branch's, 400,000 events per run (profile_run.sh), idempotent and plain acks=all, the
# order of main and branch swapped every round.
# Usage: ab_worker_sleep.sh MAIN_SLUICED BRANCH_SLUICED ROUNDS
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
for ((r = 1; r <= $3; ++r)); do
  if ((r % 2)); then order="main branch"; else order="branch main"; fi
  for idem in 1 0; do
    for v in $order; do
      bin=$1; [ $v = branch ] && bin=$2
      echo -n "round $r $v "
      SLUICED=$bin "$HERE/profile_run.sh" $idem 400000
    done
  done
done
