#!/usr/bin/env python3
"""What ran on the CPUs while the slowest deliveries were in flight.

Lines up a delivery trace from the load generator with a system-wide CPU profile taken at the
same time on the same clock:

    perf record -a -e cpu-clock -F 1999 -k CLOCK_MONOTONIC -o P.data -- sleep 75 &
    CONFAB_LOAD_TRACE=T.csv confab-load underload --system embedded --rates 2000
    load-tests/tail.py T.csv --cpu P.data [--quantile 0.99] [--rate 2000]

A "slow window" is the time from the send to the delivery of a delivery at or over the
quantile. For each thread group (perf's comm, digits folded), it prints the CPU it used in
slow windows and over the whole step (in % of one core), so a group that crowds the sender's
path out shows up as using more while deliveries were slow. Idle (swapper) is included: if
the CPUs sat idle while deliveries were slow, the wait was not for CPU.

With `--sched S.data`, a recording of the run with
`perf record -e sched:sched_switch -g -a -k CLOCK_MONOTONIC` (make it a second run: it
is heavy), it prints, per thread group, how long its threads sat runnable but not running
(preempted), and how long they were blocked in fsync/fdatasync, over the step and in slow
windows.
"""
import argparse
import bisect
import collections
import csv
import os
import re
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("--cpu", help="a cpu-clock recording of the run (see above)")
    ap.add_argument("--quantile", type=float, default=0.99)
    ap.add_argument("--rate", type=int, default=None, help="only this step of the trace (default: every step but the probes)")
    ap.add_argument("--symbols", type=int, default=12, help="top symbols to list for slow windows")
    ap.add_argument("--sched", help="a sched_switch recording of the same run (see above)")
    a = ap.parse_args()

    rows = []
    with open(a.trace) as f:
        for r in csv.DictReader(f):
            # probes and warm-up (`r1000000-...`, `r2000000-...`) are not part of a step
            if (a.rate is None and int(r["rate"]) < 1_000_000) or int(r["rate"]) == a.rate:
                rows.append((int(r["sent_monotonic_ns"]) / 1e9, int(r["latency_us"]) / 1e6))
    if not rows:
        sys.exit("no deliveries in the trace")
    lat = sorted(l for _, l in rows)
    cut = lat[min(len(lat) - 1, int(a.quantile * len(lat)))]
    start = min(s for s, _ in rows)
    end = max(s + l for s, l in rows)
    # slow windows, merged
    spans = sorted((s, s + l) for s, l in rows if l >= cut)
    merged = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    slow_time = sum(e - s for s, e in merged)
    starts = [s for s, _ in merged]

    def in_slow(t):
        i = bisect.bisect_right(starts, t) - 1
        return i >= 0 and t <= merged[i][1]

    print(f"deliveries: {len(rows)}; q{a.quantile:g} = {cut * 1000:.2f} ms; {len(spans)} at or over it")
    print(f"step: {end - start:.1f} s; slow windows: {len(merged)}, {slow_time:.2f} s in all ({100 * slow_time / (end - start):.1f}% of the step)")
    if a.cpu:
        on_cpu(a.cpu, start, end, in_slow, slow_time, a.symbols)
    if a.sched:
        off_cpu(a.sched, start, end, merged, slow_time)


def proc_names(perf_data):
    """pid -> process name: the comm of each process's main thread (tid == pid)."""
    out = subprocess.run(["perf", "script", "-i", perf_data, "--show-task-events", "-F", "comm,pid,tid"],
                         capture_output=True, text=True, check=True).stdout
    names = {}
    for l in out.splitlines():
        m = re.match(r"^\s*(.+?)\s+(\d+)/(\d+)\b", l)
        if m and m.group(2) == m.group(3) and m.group(2) != "0":
            names.setdefault(int(m.group(2)), m.group(1).strip())
    return names


def group_of(names, pid, comm):
    thread = re.sub(r"[0-9]+", "N", comm)
    if pid == 0:
        return "idle"
    if names.get(pid, comm) == comm:
        return thread  # a kernel thread or a one-thread process
    return f"{names.get(pid, 'other')}: {thread}"


def on_cpu(path, start, end, in_slow, slow_time, nsymbols):
    names = proc_names(path)
    out = subprocess.run(
        ["perf", "script", "-i", path, "-F", "comm,pid,tid,cpu,time,ip,sym,dso"],
        capture_output=True, text=True, check=True,
    ).stdout
    line = re.compile(r"^\s*(.+?)\s+(\d+)/(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+[0-9a-f]+\s+(.*?)\s*\(([^()]*)\)$")
    all_n = collections.Counter()
    slow_n = collections.Counter()
    slow_sym = collections.Counter()
    for l in out.splitlines():
        m = line.match(l)
        if not m:
            continue
        comm, pid, t, sym = m.group(1), int(m.group(2)), float(m.group(5)), m.group(6) or "?"
        if t < start or t > end:
            continue
        group = group_of(names, pid, comm)
        all_n[group] += 1
        if in_slow(t):
            slow_n[group] += 1
            slow_sym[(group, sym)] += 1
    total = sum(all_n.values())
    if total == 0:
        sys.exit("no perf samples inside the step: was perf recording with -k CLOCK_MONOTONIC?")
    # samples per second of one core: every CPU is sampled, idle ones as swapper
    per_core = total / (end - start) / (os.cpu_count() or 1)
    print()
    print("| thread group (perf comm) | CPU over the step (% of a core) | CPU in slow windows (% of a core) |")
    print("|---|---|---|")
    for g, n in sorted(all_n.items(), key=lambda kv: -max(kv[1] / (end - start), slow_n[kv[0]] / slow_time if slow_time else 0)):
        whole = 100 * n / (end - start) / per_core
        slow = 100 * slow_n[g] / slow_time / per_core if slow_time else 0.0
        if whole < 0.5 and slow < 0.5:
            continue
        print(f"| {g} | {whole:.1f} | {slow:.1f} |")
    print()
    print(f"top symbols in slow windows (% of their samples, {sum(slow_n.values())} samples):")
    s_total = sum(slow_n.values()) or 1
    for (g, sym), n in slow_sym.most_common(nsymbols):
        print(f"  {100 * n / s_total:5.1f}%  {g}  {sym}")


def off_cpu_spans(path):
    """Every time a thread was off CPU, from sched_switch events: (pid, comm, why, since, until),
    why being "fsync" (blocked in fsync/fdatasync, from the kernel stack when recorded with -g),
    "preempted" (runnable, not running) or None (asleep for another reason)."""
    out = subprocess.run(
        ["perf", "script", "-i", path, "-F", "comm,pid,tid,time,trace,ip,sym"],
        capture_output=True, text=True, check=True,
    ).stdout
    head = re.compile(r"^\s*(.+?)\s+(\d+)/(\d+)\s+([\d.]+):.*prev_state=(\S+).*next_pid=(\d+)")
    away = {}  # tid -> (since, why, pid, comm)
    events = []  # (header match, its kernel stack); stacks are the tab-indented lines after
    for l in out.splitlines():
        m = head.match(l)
        if m:
            events.append((m, []))
        elif l.startswith("\t") and events:
            events[-1][1].append(l)
    for m, stack_lines in events:
        comm, pid, tid, t, state, nxt = m.group(1), int(m.group(2)), int(m.group(3)), float(m.group(4)), m.group(5), int(m.group(6))
        stack = " ".join(stack_lines)
        why = "fsync" if ("sys_fsync" in stack or "sys_fdatasync" in stack) else ("preempted" if state.startswith("R") else None)
        if tid != 0:
            away[tid] = (t, why, pid, comm)
        if nxt in away:
            since, w, p, c = away.pop(nxt)
            yield p, c, w, since, t


def off_cpu(path, start, end, merged, slow_time):
    """Preempted and fsync time per thread group, over the step and in slow windows."""
    names = proc_names(path)
    spans = collections.defaultdict(list)  # (group, why) -> [(from, to)]
    for pid, comm, why, since, until in off_cpu_spans(path):
        if why and since >= start and until <= end:
            spans[(group_of(names, pid, comm), why)].append((since, until))

    def in_windows(a, b):
        total = 0.0
        i = max(0, bisect.bisect_right([s for s, _ in merged], a) - 1)
        while i < len(merged) and merged[i][0] <= b:
            total += max(0.0, min(b, merged[i][1]) - max(a, merged[i][0]))
            i += 1
        return total

    print()
    print("| thread group | off CPU because | ms per s over the step | ms per s in slow windows | p99 / max of one wait (ms) |")
    print("|---|---|---|---|---|")
    rows = []
    for (g, w), v in spans.items():
        whole = sum(b - a for a, b in v) / (end - start) * 1000
        slow = sum(in_windows(a, b) for a, b in v) / slow_time * 1000 if slow_time else 0.0
        d = sorted(b - a for a, b in v)
        rows.append((max(whole, slow), g, w, whole, slow, d[min(len(d) - 1, int(0.99 * len(d)))] * 1000, d[-1] * 1000))
    for _, g, w, whole, slow, p99, mx in sorted(rows, reverse=True):
        if max(whole, slow) >= 1.0:
            print(f"| {g} | {w} | {whole:.1f} | {slow:.1f} | {p99:.2f} / {mx:.2f} |")


if __name__ == "__main__":
    main()
