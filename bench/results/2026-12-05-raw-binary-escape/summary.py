import json,sys,glob,statistics,collections
d=sys.argv[1]
res=collections.defaultdict(lambda: collections.defaultdict(list))
cnt={}
for f in sorted(glob.glob(d+'/*.json')):
    v=f.split('/')[-1].split('.')[0]
    for b in json.load(open(f))['benchmarks']:
        rows=b.get('rows',16384)
        res[b['name']][v].append(b['cpu_time']/rows)
        cnt[(b['name'],v)]={k[2:] if k.startswith('B_') else k:round(x,2) for k,x in b.items() if k.startswith('B_') or k.endswith('per_row')}
for n in res:
    bt=res[n]['before']; at=res[n]['after']
    mb,ma=statistics.median(bt),statistics.median(at)
    print(f"{n}: cpu ns/row before median {mb:.0f} [{min(bt):.0f}-{max(bt):.0f}] after median {ma:.0f} [{min(at):.0f}-{max(at):.0f}]  after/before median {ma/mb:.3f}  min {min(at)/min(bt):.3f}")
    if cnt.get((n,'before')): print('   before', cnt[(n,'before')]); print('   after ', cnt[(n,'after')])
