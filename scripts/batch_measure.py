#!/usr/bin/env python3
"""Batch mode against the sum of single runs, as `apr-lint-bench --batch` measures it, but with
CPU time (user + system) from wait4's rusage (microseconds; /usr/bin/time rounds each run to 10 ms,
which is most of a tiny pair's CPU). Batch and singles interleaved, order flipped each repetition,
after one warm-up of each; prints medians and the median of the per-repetition ratios.

usage: batch_measure.py BIN REPS NAME:BATCH_ARGS:SINGLE_ARGS;SINGLE_ARGS;...  (args space-separated)
e.g.   batch_measure.py target/release/apr-lint 9 \
         "big:D/batch-1.5b:D/batch-1.5b/pair-01.apr --against D/batch-1.5b/pair-01.gguf;..."
"""
import os, sys, time, statistics, subprocess
bin_, reps = sys.argv[1], int(sys.argv[2])
def run(args):
    t = time.perf_counter()
    p = subprocess.Popen([bin_] + args + ["-q", "--format", "json"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    w = time.perf_counter() - t
    assert os.waitstatus_to_exitcode(status) != 2, args
    return w, ru.ru_utime + ru.ru_stime
for spec in sys.argv[3:]:
    name, batch, singles = spec.split(":")
    batch = batch.split()
    singles = [s.split() for s in singles.split(";")]
    run(batch); [run(s) for s in singles]
    rw, rc, bw, sw, bc, sc = [], [], [], [], [], []
    for i in range(reps):
        order = [0, 1] if i % 2 == 0 else [1, 0]
        res = {}
        for o in order:
            if o == 0:
                res[0] = run(batch)
            else:
                xs = [run(s) for s in singles]
                res[1] = (sum(x[0] for x in xs), sum(x[1] for x in xs))
        bw.append(res[0][0]); sw.append(res[1][0]); bc.append(res[0][1]); sc.append(res[1][1])
        rw.append(res[0][0] / res[1][0]); rc.append(res[0][1] / res[1][1])
    m = statistics.median
    print(f"{name}: batch wall {m(bw)*1e3:.0f} ms, singles wall {m(sw)*1e3:.0f} ms, ratio {m(rw):.2f} ({min(rw):.2}-{max(rw):.2}); "
          f"CPU batch {m(bc)*1e3:.0f} ms, singles {m(sc)*1e3:.0f} ms, ratio {m(rc):.2f}; per-pair single CPU {m(sc)*1e3/len(singles):.1f} ms, single wall {m(sw)*1e3/len(singles):.1f} ms")
print("load", os.getloadavg())
