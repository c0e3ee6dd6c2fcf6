import sys, os, time, argparse
sys.path.insert(0, "bench/dataplane"); sys.path.insert(0, "bench/e2e")
import e2e_rate, stall_watch
a = argparse.Namespace(build="build", slots=0, events=20000, inf_events=20000)
r = e2e_rate.Runner(a)
small = r.generate("binary", 20000, "g")[0]
p, sock, run_dir, prefix, roles = r.start("idle", [f"net_pcap0,rx_pcap={small}"], [])
try:
    time.sleep(3)
    t0 = stall_watch.threads(p.pid); s0 = time.monotonic(); time.sleep(5); t1 = stall_watch.threads(p.pid); dt = time.monotonic() - s0
    for tid, v in t1.items():
        name = v[0]; role = roles.get(name, "")
        print(f"{name:16s} {role:7s} cpu {v[2]-t0[tid][2]:.3f} s of {dt:.2f} s, runq wait {v[5]-t0[tid][5]:.3f} s, {v[3]}")
finally:
    r.stop(p, sock, prefix)
    import shutil; shutil.rmtree(r.tmp, ignore_errors=True)
