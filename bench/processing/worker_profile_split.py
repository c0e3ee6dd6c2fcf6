#!/usr/bin/env python3
# Splits `perf script` output of worker_bench (perf record -g --call-graph dwarf) by worker stage:
# only samples under worker::process/tick count. Usage: worker_profile_split.py perf-script.txt [cpu_ns_per_event]
import sys, re, collections
stages = [  # (stage, regex on a frame), matched from the leaf up: the first frame that matches wins
 ('zstd compress', r'ZSTD_|HUF_|FSE_'),
 ('encode: raw skeleton (ref_packed_string)', r'ref_packed_string'),
 ('encode: other columns (dict/suffix/bitpack/stats)', r'format::(dict_string|suffix_number|delta_bitpack|plain|varint|stats_of|bitpack)'),
 ('encode: block (XXH3, chunks, headers)', r'block_encoder|format::chunk|segment_writer::seal'),
 ('write + group commit (io_uring, kernel)', r'uring_writer|segment_writer::poll|segment_writer::submit|io_uring|segment_writer::'),
 ('dedup', r'dedup_filter'),
 ('window add/close', r'window_state|worker::aggregate|worker::prepare_windows|worker::prefetch_cells|worker::close_cells|worker::advance|compiled_query'),
 ('column append (store_event)', r'worker::store_event|column_batch'),
 ('worker::process loop (other)', r'worker::process'),
 ('worker::tick (other)', r'worker::tick'),
]
text = open(sys.argv[1]).read().split('\n\n')
cnt = collections.Counter(); total_all = 0; leaf = collections.Counter()
for s in text:
    lines = s.strip().split('\n')
    if len(lines) < 2: continue
    total_all += 1
    frames = [l.strip() for l in lines[1:]]
    if not any(re.search(r'worker::(process|tick)\b', f) for f in frames): continue
    for st, rx in stages:
        if any(re.search(rx, f) for f in frames):
            cnt[st] += 1; break
    sym = re.sub(r'^\S+\s+', '', frames[0]); sym = re.sub(r'\+0x[0-9a-f]+.*', '', sym)
    leaf[sym] += 1
n = sum(cnt.values())
ns = float(sys.argv[2]) if len(sys.argv) > 2 else 0
print(f'samples: {total_all} total, {n} in worker::process/tick ({100*n/total_all:.1f}%)')
for st, _ in stages:
    c = cnt[st]; print(f'{st:55s} {100*c/n:5.1f}%' + (f'  {ns*c/n:6.0f} ns/event' if ns else ''))
print('\ntop leaf symbols in the worker part:')
for sym, c in leaf.most_common(25): print(f'{100*c/n:5.1f}%  {sym[:110]}')
