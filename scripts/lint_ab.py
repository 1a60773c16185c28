#!/usr/bin/env python3
"""Interleaved A/B timing of the whole `apr-lint X.apr --against X.gguf -q --format json` process.

    python3 scripts/lint_ab.py DIR BIN_A BIN_B [--cold] [-n N]

DIR holds the bench pair (`apr-lint-bench --dir DIR` generates it). Warm: wall time and user+sys
CPU of each child (wait4), medians over N rounds of A then B. `--cold`: before every run both files
are dropped from the page cache with POSIX_FADV_DONTNEED (retried until `fincore` shows no page),
and `fincore` after the run says how much the run read. Used for BENCHMARKS.md (issue 13 item 4).
"""
import argparse, os, statistics, subprocess, time

ap = argparse.ArgumentParser()
ap.add_argument("dir")
ap.add_argument("a")
ap.add_argument("b")
ap.add_argument("--cold", action="store_true")
ap.add_argument("-n", type=int, default=21)
o = ap.parse_args()
stem = "qwen2.5-1.5b-q4_k-seed1"
files = [os.path.join(o.dir, stem + ".apr"), os.path.join(o.dir, stem + ".gguf")]
args = [files[0], "--against", files[1], "-q", "--format", "json"]


def resident_mb():
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES"] + files,
                         capture_output=True, text=True).stdout.split()
    return sum(int(x) for x in out) / 1e6


def evict():
    for _ in range(10):
        for f in files:
            os_fd = os.open(f, os.O_RDONLY)
            os.posix_fadvise(os_fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(os_fd)
        if resident_mb() == 0:
            return
        time.sleep(0.2)


res = {k: {"wall": [], "cpu": [], "read": []} for k in (o.a, o.b)}
for _ in range(o.n):
    for k in (o.a, o.b):
        if o.cold:
            evict()
        t = time.perf_counter()
        p = subprocess.Popen([k] + args, stdout=subprocess.DEVNULL)
        _, _, ru = os.wait4(p.pid, 0)
        res[k]["wall"].append((time.perf_counter() - t) * 1e3)
        res[k]["cpu"].append((ru.ru_utime + ru.ru_stime) * 1e3)
        if o.cold:
            res[k]["read"].append(resident_mb())
for k, r in res.items():
    line = "%s: wall median %.1f ms (min %.1f, max %.1f), cpu median %.1f ms" % (
        k, statistics.median(r["wall"]), min(r["wall"]), max(r["wall"]), statistics.median(r["cpu"]))
    if r["read"]:
        line += ", read median %.1f MB" % statistics.median(r["read"])
    print(line)
