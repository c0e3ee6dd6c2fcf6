#!/usr/bin/env python3
# The encode stage's "other columns" samples of a worker_bench profile (perf script text, as
# for worker_profile_split.py), split by the encoding function they fall under and the leaf
# symbol: shares of all the worker's samples (under worker::process/tick), zstd and the raw
# skeleton left out. Usage: worker_profile_columns.py perf-script.txt
import sys,re,collections
text=open(sys.argv[1]).read().split('\n\n')
rx=re.compile(r'format::(dict_string|suffix_number|delta_bitpack|plain|varint|stats_of|bitpack)')
c=collections.Counter(); tot=0; n=0
for s in text:
    lines=s.strip().split('\n')
    if len(lines)<2: continue
    fr=[l.strip() for l in lines[1:]]
    if not any(re.search(r'worker::(process|tick)\b',f) for f in fr): continue
    tot+=1
    if any(re.search(r'ZSTD_|HUF_|FSE_|ref_packed_string',f) for f in fr): continue
    m=[f for f in fr if rx.search(f)]
    if not m: continue
    n+=1
    leaf=re.sub(r'^\S+\s+','',fr[0]); leaf=re.sub(r'\+0x[0-9a-f]+.*','',leaf)[:60]
    own=re.sub(r'^\S+\s+','',m[0]); own=re.sub(r'\+0x[0-9a-f]+.*','',own)[:70]
    c[(own,leaf)]+=1
print(n,tot)
for k,v in c.most_common(30): print(f'{100*v/tot:5.2f}% {k[0]} <- {k[1]}')
