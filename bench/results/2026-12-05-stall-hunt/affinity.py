import sys, os, time, argparse
sys.path.insert(0, "bench/dataplane"); sys.path.insert(0, "bench/e2e")
import e2e_rate
a = argparse.Namespace(build="build", slots=0, events=2000, inf_events=2000)
r = e2e_rate.Runner(a)
small = r.generate("binary", 2000, "g")[0]
p, sock, run_dir, prefix, roles = r.start("aff", [f"net_pcap0,rx_pcap={small}"], [])
try:
    for tid in sorted(os.listdir(f"/proc/{p.pid}/task"), key=int):
        st = open(f"/proc/{p.pid}/task/{tid}/status").read()
        name = [l for l in st.splitlines() if l.startswith("Name:")][0].split()[1]
        cpus = [l for l in st.splitlines() if l.startswith("Cpus_allowed_list:")][0].split()[1]
        print(f"{name:16s} {roles.get(name,''):7s} cpus {cpus}")
    print("autogroup", open(f"/proc/{p.pid}/autogroup").read().strip())
finally:
    r.stop(p, sock, prefix)
    import shutil; shutil.rmtree(r.tmp, ignore_errors=True)
