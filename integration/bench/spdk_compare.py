#!/usr/bin/env python3
"""Helper of spdk-compare.sh: runs spdk_nvme_perf once against one target and records it, and
turns the recorded runs into the comparison table and JSON.

  spdk_compare.py run --raw FILE --target NAME --pid PID --row KEY --label TEXT --round N
                      --warmup SECS --time SECS -- PERF-COMMAND...
  spdk_compare.py report --raw FILE --out FILE [--meta JSON]

`run` samples the target's CPU time (utime + stime of every thread, /proc/PID/stat) inside the
measured window: spdk_nvme_perf prints "Initialization complete. Launching workers." and then
connects its I/O queues, warms up for --warmup seconds, and measures for --time seconds; the
samples are taken MARGIN seconds after the window opens and before it closes, so connection,
warm-up and teardown are left out. The CPU time of the whole perf process lifetime is recorded
too (cpu_total_s, wall_total_s). One JSON line per run goes to --raw; a failed run gets a line
with "error". Needs spdk_nvme_perf's -L (the percentile summary) in the command.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time

MARGIN = 0.2  # seconds left out at each end of the measured window
TICK = os.sysconf("SC_CLK_TCK")
TOTAL = re.compile(r"^Total\s*:\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$")
PCT = re.compile(r"^\s*([\d.]+)%\s*:\s*([\d.]+)us\s*$")


def cpu_seconds(pid):
    """utime + stime of the whole process (all threads, live and exited), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / TICK


def parse_perf(text):
    """IOPS, MiB/s, latencies and percentiles from spdk_nvme_perf -L output."""
    out, pcts, in_summary = {}, {}, False
    for line in text.splitlines():
        m = TOTAL.match(line)
        if m:
            iops, mib, avg, lo, hi = (float(x) for x in m.groups())
            out.update(iops=iops, mib_s=mib, avg_us=avg, min_us=lo, max_us=hi)
            continue
        if line.startswith("Summary latency data"):
            in_summary = True
            continue
        m = PCT.match(line) if in_summary else None
        if m:
            # One block per namespace and core; keep the worst value of each percentile.
            key = format(float(m.group(1)), "g")
            pcts[key] = max(pcts.get(key, 0.0), float(m.group(2)))
    if "iops" not in out:
        raise ValueError("no Total line in spdk_nvme_perf's output")
    if pcts:
        out["percentiles_us"] = pcts
        for name, key in (("p50_us", "50"), ("p99_us", "99"), ("p99_9_us", "99.9")):
            if key in pcts:
                out[name] = pcts[key]
    return out


def sampler(pid, t_launch, args, samples, stop):
    """Takes the two CPU samples of the measured window, timed from the launch line; gives up
    when `stop` is set (perf exited early)."""
    first = t_launch + args.warmup + MARGIN
    last = t_launch + args.warmup + args.time - MARGIN
    for when, name in ((first, "start"), (last, "end")):
        if stop.wait(max(0.0, when - time.monotonic())):
            return
        samples[name] = (time.monotonic(), cpu_seconds(pid))


def run(args):
    rec = {"target": args.target, "row": args.row, "label": args.label, "round": args.round,
           "time_s": args.time, "warmup_s": args.warmup, "command": args.cmd}
    cpu0, t0 = cpu_seconds(args.pid), time.monotonic()
    err_path = args.raw + ".stderr"
    samples, lines, stop = {}, [], threading.Event()
    with open(err_path, "w") as err:
        proc = subprocess.Popen(["stdbuf", "-oL", *args.cmd], stdout=subprocess.PIPE,
                                stderr=err, text=True)
        deadline = threading.Timer(args.warmup + args.time + 60, proc.kill)
        deadline.start()
        thread = None
        for line in proc.stdout:
            lines.append(line)
            if thread is None and line.startswith("Initialization complete. Launching workers"):
                thread = threading.Thread(target=sampler,
                                          args=(args.pid, time.monotonic(), args, samples, stop))
                thread.start()
        rc = proc.wait()
        deadline.cancel()
        stop.set()  # a run that ended normally took both samples before it exited
        if thread is not None:
            thread.join()
    cpu1, t1 = cpu_seconds(args.pid), time.monotonic()
    text = "".join(lines)
    rec["rc"] = rc
    try:
        if rc != 0:
            raise ValueError(f"spdk_nvme_perf exited with {rc}")
        rec.update(parse_perf(text))
        if "start" not in samples or "end" not in samples:
            raise ValueError("the measured window was never reached")
        (ts, cs), (te, ce) = samples["start"], samples["end"]
        if cs is None or ce is None or cpu1 is None:
            raise ValueError("the target exited during the run")
        window = te - ts
        rec.update(cpu_s=ce - cs, cpu_window_s=window, cpu_pct=100 * (ce - cs) / window,
                   cpu_total_s=cpu1 - cpu0, wall_total_s=t1 - t0)
        rec["iops_per_cpu_s"] = rec["iops"] * window / rec["cpu_s"] if rec["cpu_s"] > 0 else None
    except (ValueError, KeyError) as e:
        rec["error"] = str(e)
        with open(err_path) as f:
            rec["output_tail"] = (text + f.read())[-2000:]
    with open(args.raw, "a") as f:
        f.write(json.dumps(rec) + "\n")
    if "error" in rec:
        print(f"  {args.target:<6} {args.label:<26} round {args.round}: FAILED: {rec['error']}\n"
              + "\n".join("    " + l for l in rec["output_tail"].splitlines()[-15:]),
              file=sys.stderr)
    else:
        p99 = f"  p99 {rec['p99_us']:7.1f} us" if "p99_us" in rec else ""
        print(f"  {args.target:<6} {args.label:<26} round {args.round}: {rec['iops']:>10,.0f} IOPS "
              f"{rec['mib_s']:>8.1f} MiB/s  avg {rec['avg_us']:7.1f} us{p99}  "
              f"CPU {rec['cpu_pct']:5.1f}%", file=sys.stderr)


def med(runs, key):
    vals = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def ratio(a, b):
    return a / b if a is not None and b else None


def summarize(rows, runs):
    out = []
    for row in rows:
        s = {"row": row, "label": next(r["label"] for r in runs if r["row"] == row)}
        for t in ("lamina", "spdk"):
            ok = [r for r in runs if r["row"] == row and r["target"] == t and "error" not in r]
            s[t] = {"runs": len(ok),
                    "failed": sum(1 for r in runs if r["row"] == row and r["target"] == t
                                  and "error" in r)}
            for key in ("iops", "mib_s", "avg_us", "p50_us", "p99_us", "p99_9_us", "cpu_s",
                        "cpu_pct", "iops_per_cpu_s"):
                s[t][key] = med(ok, key)
            iops = [r["iops"] for r in ok]
            s[t]["iops_min"], s[t]["iops_max"] = (min(iops), max(iops)) if iops else (None, None)
        s["iops_ratio"] = ratio(s["lamina"]["iops"], s["spdk"]["iops"])
        s["iops_per_cpu_s_ratio"] = ratio(s["lamina"]["iops_per_cpu_s"],
                                          s["spdk"]["iops_per_cpu_s"])
        out.append(s)
    return out


def k(v):
    return "-" if v is None else f"{v / 1000:.1f}k"


def f1(v):
    return "-" if v is None else f"{v:.1f}"


def f0(v):
    return "-" if v is None else f"{v:.0f}"


def rt(v):
    return "-" if v is None else f"{v:.2f}"


def spread(s):
    if s["iops_min"] is None:
        return "failed" if s["failed"] else "-"
    text = f"{s['iops_min'] / 1000:.1f}-{s['iops_max'] / 1000:.1f}k"
    return text + (f" +{s['failed']} failed" if s["failed"] else "")


def table(summary):
    head = (f"{'row':<26} {'IOPS L':>8} {'IOPS S':>8} {'L/S':>5} | {'avg us L':>8} {'S':>6} | "
            f"{'p99 us L':>8} {'S':>6} | {'CPU% L':>6} {'S':>5} | {'IOPS/CPU-s L':>12} "
            f"{'S':>7} {'L/S':>5} | {'spread L':>13} {'spread S':>13}")
    lines = [head, "-" * len(head)]
    for s in summary:
        L, S = s["lamina"], s["spdk"]
        lines.append(
            f"{s['label']:<26} {k(L['iops']):>8} {k(S['iops']):>8} {rt(s['iops_ratio']):>5} | "
            f"{f1(L['avg_us']):>8} {f1(S['avg_us']):>6} | {f1(L['p99_us']):>8} "
            f"{f1(S['p99_us']):>6} | {f0(L['cpu_pct']):>6} {f0(S['cpu_pct']):>5} | "
            f"{k(L['iops_per_cpu_s']):>12} {k(S['iops_per_cpu_s']):>7} "
            f"{rt(s['iops_per_cpu_s_ratio']):>5} | {spread(L):>13} {spread(S):>13}")
    return "\n".join(lines)


def report(args):
    runs = [json.loads(l) for l in open(args.raw) if l.strip()]
    rows = list(dict.fromkeys(r["row"] for r in runs))
    summary = summarize(rows, runs)
    meta = json.loads(args.meta) if args.meta else {}
    meta.update(date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                kernel=os.uname().release, cpus=os.cpu_count(), loadavg_end=os.getloadavg())
    fills = []
    if args.fill and os.path.exists(args.fill):
        fills = [json.loads(l) for l in open(args.fill) if l.strip()]
    with open(args.out, "w") as f:
        json.dump({"machine": meta, "fill": fills, "summary": summary, "runs": runs}, f, indent=2)
    print(table(summary))
    print(f"\nMedians over rounds; L = Lamina, S = SPDK nvmf_tgt; both measured with spdk_nvme_perf."
          f"\nCPU% and IOPS/CPU-s: the target process's utime+stime in the measured window;"
          f" spread: min-max IOPS over rounds.\nJSON: {args.out}")
    failed = [r for r in runs if "error" in r]
    if failed:
        print(f"{len(failed)} run(s) failed: "
              + ", ".join(f"{r['target']} {r['label']} round {r['round']}" for r in failed),
              file=sys.stderr)
        return 1
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    r = sub.add_parser("run")
    r.add_argument("--raw", required=True)
    r.add_argument("--target", required=True)
    r.add_argument("--pid", type=int, required=True)
    r.add_argument("--row", required=True)
    r.add_argument("--label", required=True)
    r.add_argument("--round", type=int, default=1)
    r.add_argument("--warmup", type=float, default=1)
    r.add_argument("--time", type=float, required=True)
    r.add_argument("cmd", nargs=argparse.REMAINDER)
    o = sub.add_parser("report")
    o.add_argument("--raw", required=True)
    o.add_argument("--out", required=True)
    o.add_argument("--fill")
    o.add_argument("--meta")
    args = p.parse_args()
    if args.what == "run":
        if args.cmd and args.cmd[0] == "--":
            args.cmd = args.cmd[1:]
        if not args.cmd or args.time <= 2 * MARGIN:
            p.error("run needs a perf command after -- and --time above 0.4 s")
        run(args)
        return 0
    return report(args)


if __name__ == "__main__":
    sys.exit(main())
