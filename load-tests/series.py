#!/usr/bin/env python3
"""CPU per thread group, second by second, from a system-wide recording.

For stalls that come and go during a long run (such as the embedded throughput steps past
10,000 msg/s), where what matters is what else ran in the seconds the async workers lost:

    perf record -a -e cpu-clock -F 999 -e sched:sched_switch -k CLOCK_MONOTONIC -o S.data -- sleep 150 &
    confab-load throughput --mode embedded --rates 8000,10000,12000,14000
    load-tests/series.py S.data [--from T0] [--to T1] [--groups 8]

One row per second: each thread group's CPU (% of one core; perf comm, digits folded) and how
long the threads named tokio-rt-worker sat runnable but not running (ms). T0/T1 are
CLOCK_MONOTONIC seconds (`cat /proc/uptime` is close enough to pick them).
"""
import argparse
import collections
import os
import re
import subprocess

import tail  # the perf parsing it shares (load-tests/tail.py)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("perf_data")
    ap.add_argument("--from", dest="t0", type=float, default=None)
    ap.add_argument("--to", dest="t1", type=float, default=None)
    ap.add_argument("--groups", type=int, default=8, help="thread groups to show, busiest first")
    ap.add_argument("--workers", default="tokio-rt-worker", help="the thread name whose preemption is summed")
    ap.add_argument("--processes", action="store_true", help="group by process (its main thread's name) instead of by thread")
    a = ap.parse_args()

    out = subprocess.run(["perf", "script", "-i", a.perf_data, "-F", "comm,pid,tid,time,event"],
                         capture_output=True, text=True, check=True).stdout
    line = re.compile(r"^\s*(.+?)\s+(\d+)/(\d+)\s+([\d.]+):\s+cpu-clock")
    names = tail.proc_names(a.perf_data)
    samples = [(m.group(1), int(m.group(2)), float(m.group(4))) for m in map(line.match, out.splitlines()) if m]
    t0 = a.t0 if a.t0 is not None else min((t for _, _, t in samples), default=0.0)
    t1 = a.t1 if a.t1 is not None else float("inf")
    cpu = collections.defaultdict(collections.Counter)
    for comm, pid, t in samples:
        if t0 <= t <= t1:
            thread = "idle" if pid == 0 else re.sub(r"[0-9]+", "N", comm)
            cpu[int(t - t0)][names.get(pid, thread) if a.processes and pid else thread] += 1
    preempted = collections.Counter()
    for _pid, comm, why, since, until in tail.off_cpu_spans(a.perf_data):
        if why == "preempted" and t0 <= since <= t1 and re.sub(r"[0-9]+", "N", comm) == a.workers:
            preempted[int(since - t0)] += until - since
    if not cpu:
        raise SystemExit("no cpu-clock samples in that window")
    total = collections.Counter()
    for c in cpu.values():
        total.update(c)
    groups = [g for g, _ in total.most_common() if g != "idle"][: a.groups] + ["idle"]
    ncpu = os.cpu_count() or 1  # every CPU is sampled, idle ones as swapper
    print(f"seconds from {t0:.1f} (CLOCK_MONOTONIC); CPU in % of one core; last column: {a.workers} preempted, ms")
    print()
    print("| s | " + " | ".join(groups) + f" | {a.workers} preempted ms |")
    print("|---" * (len(groups) + 2) + "|")
    for sec in sorted(cpu):
        n = sum(cpu[sec].values())
        row = [f"{100 * ncpu * cpu[sec][g] / n:.0f}" for g in groups]
        print(f"| {sec} | " + " | ".join(row) + f" | {1000 * preempted[sec]:.0f} |")


if __name__ == "__main__":
    main()
