#!/usr/bin/env python3
# Writes skeletons back to back (OUT.bin) and their u32 lengths (OUT.len) for
# skeleton_dict_proto.c, from either
#   seed CHUNK OUT   a dumped ref_packed_string chunk of worker_bench (seed events without
#                    event_id: each skeleton starts with {"user_id"; header and packed
#                    lengths dropped), or
#   gen PCAP OUT     sluice-gen's capture: event lines pulled from the UDP payloads, the
#                    values of event_id, user_id, event_type, page (unescaped strings) and a
#                    UTC RFC 3339 or epoch-ms timestamp cut to a marker byte, as the
#                    writer's skeletons do (approximation: other renderings stay as text).
import re, struct, sys
mode, src, out = sys.argv[1:4]
data = open(src, 'rb').read()
rows = []
if mode == 'seed':
    starts = [m.start() for m in re.finditer(rb'\{"user_id"', data)]
    for a, b in zip(starts, starts[1:] + [None]):
        s = data[a:b] if b else data[a:data.index(b'}}', a) + 2]
        rows.append(s)
else:
    lines = re.findall(rb'\{"[^\n]*?\}(?=\n|\x00|$)', data)
    for s in (l for l in lines if b'"user_id"' in l and l.count(b'{') == l.count(b'}')):
        for k in (b'event_id', b'user_id', b'event_type', b'page'):
            s = re.sub(rb'("' + k + rb'":")[^"\\]*"', lambda m: m.group(1) + b'\x01"', s, count=1)
        s = re.sub(rb'("timestamp":")\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z"',
                   lambda m: m.group(1) + b'\x02Z"', s, count=1)
        s = re.sub(rb'("timestamp":)\d{10,14}', lambda m: m.group(1) + b'\x02', s, count=1)
        rows.append(s)
    rows = rows[:16384]
open(out + '.bin', 'wb').write(b''.join(rows))
open(out + '.len', 'wb').write(struct.pack('<%dI' % len(rows), *map(len, rows)))
print(len(rows), 'rows', sum(map(len, rows)) / len(rows), 'B/row')
