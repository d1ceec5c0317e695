#!/usr/bin/env python3
"""integration/prometheus/check.py: the checks run.sh makes through Prometheus' HTTP API.

  check.py wait-up PROM_URL              waits until Prometheus scrapes lamina (up == 1)
  check.py io PROM_URL WORK_DIR          compares counters, rates, bytes, latency with lamina-perf
  check.py dashboard PROM_URL JSON_FILE  evaluates every expression of a Grafana dashboard

Standard library only. Each check prints one line; the exit status is 1 if any failed.
"""

import json
import math
import re
import sys
import time
import urllib.parse
import urllib.request

JOB = 'job="lamina"'
PERF_QUEUES, PERF_DEPTH, IO_SIZE = 2, 8, 4096


class Prom:
    def __init__(self, url):
        self.url = url.rstrip("/")

    def get(self, path, **params):
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=10) as r:
            body = json.load(r)
        if body.get("status") != "success":
            raise RuntimeError(f"{path} {params}: {body}")
        return body["data"]

    def query(self, expr, at=None):
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self.get("/api/v1/query", **params)

    def scalar(self, expr, at=None):
        """The single value of an instant query (a one-element vector or a scalar)."""
        data = self.query(expr, at)
        result = data["result"]
        if data["resultType"] == "scalar":
            return float(result[1])
        if len(result) != 1:
            raise RuntimeError(f"{expr}: expected one series, got {len(result)}: {result}")
        return float(result[0]["value"][1])


class Checks:
    def __init__(self):
        self.failed = 0

    def check(self, ok, what):
        print(f"  {'ok  ' if ok else 'FAIL'} {what}")
        if not ok:
            self.failed += 1

    def exit(self):
        sys.exit(1 if self.failed else 0)


def wait_up(prom):
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if prom.scalar(f"up{{{JOB}}}") == 1.0:
                print("  ok   Prometheus scrapes lamina (up == 1)")
                return 0
        except (RuntimeError, OSError):
            pass
        time.sleep(0.5)
    return 1


def perf_report(work, name):
    with open(f"{work}/{name}.json") as f:
        return json.load(f)


def read_time(work, name):
    with open(f"{work}/{name}") as f:
        return float(f.read().strip())


def check_counters(prom, c, op, perf):
    """Exact counters: lamina counts every command perf completed, plus at most the commands
    still in flight when perf's measured window closed (perf drains them uncounted)."""
    done = perf["total"][op]["ios"]
    tail = PERF_QUEUES * PERF_DEPTH
    n = prom.scalar(f'sum(lamina_commands_total{{{JOB}, opcode="{op}"}})')
    c.check(done <= n <= done + tail,
            f"{op}: lamina_commands_total {n:.0f} = lamina-perf's {done} (+ at most {tail} drained)")
    hist = prom.scalar(f'sum(lamina_command_duration_seconds_count{{{JOB}, opcode="{op}"}})')
    c.check(hist == n, f"{op}: histogram count {hist:.0f} = commands {n:.0f}")
    inf = prom.scalar(f'sum(lamina_command_duration_seconds_bucket{{{JOB}, opcode="{op}", le="+Inf"}})')
    c.check(inf == n, f"{op}: +Inf bucket {inf:.0f} = commands {n:.0f}")
    metric = "lamina_written_bytes_total" if op == "write" else "lamina_read_bytes_total"
    b = prom.scalar(f"sum({metric}{{{JOB}}})")
    c.check(b == n * IO_SIZE, f"{op}: {metric} {b:.0f} = {n:.0f} x {IO_SIZE}")
    return n


def check_rates(prom, c, op, perf, start, end):
    """Prometheus' rate() and increase() over our counters agree with lamina-perf's IOPS."""
    iops = perf["total"][op]["iops"]
    # A window inside the measured run, away from its ramp-up and tail.
    window = max(2, int(end - start) - 2)
    at = end - 0.5
    rate = prom.scalar(f'sum(rate(lamina_commands_total{{{JOB}, opcode="{op}"}}[{window}s]))', at)
    # What the counter did over that same window: lamina-perf's IOPS is the whole run's mean,
    # and on a loaded machine the run's throughput is not even, so the window is compared
    # with the counter's own samples (the counters themselves match perf exactly above).
    before = prom.scalar(f'sum(lamina_commands_total{{{JOB}, opcode="{op}"}})', at - window)
    after = prom.scalar(f'sum(lamina_commands_total{{{JOB}, opcode="{op}"}})', at)
    seen = (after - before) / window
    c.check(abs(rate - seen) <= 0.25 * max(seen, 1.0),
            f"{op}: rate() over {window}s = {rate:.0f}/s, the counter's samples {seen:.0f}/s "
            f"(within 25%; lamina-perf's mean {iops:.0f} IOPS)")
    # increase() over a window covering the whole run with flat margins: the total, up to
    # Prometheus' extrapolation to the window's edges (at most one scrape interval of slack).
    at = end + 2.0
    window = int(at - start) + 2
    inc = prom.scalar(f'sum(increase(lamina_commands_total{{{JOB}, opcode="{op}"}}[{window}s]))', at)
    total = prom.scalar(f'sum(lamina_commands_total{{{JOB}, opcode="{op}"}})', at)
    c.check(abs(inc - total) <= 0.15 * total,
            f"{op}: increase() over the run = {inc:.0f}, counter {total:.0f} (within 15%)")


def check_latency(prom, c, op, perf, start, end):
    """Quantiles from our histograms are consistent with lamina-perf's end-to-end latency:
    the target's own service time is shorter, and bucket interpolation can overshoot by at
    most the 2.5x ratio between neighbouring bounds (1-2-5 per decade)."""
    at = (start + end) / 2 + 1
    expr = (f"histogram_quantile(0.99, sum by (le) (rate(lamina_command_duration_seconds_bucket"
            f'{{{JOB}, opcode="{op}"}}[3s])))')
    q99 = prom.scalar(expr, at)
    perf_p99 = perf["total"][op]["p99_us"] / 1e6
    c.check(0 < q99 <= 2.5 * perf_p99 + 1e-5,
            f"{op}: p99 from the histogram {q99 * 1e6:.0f} us, lamina-perf end-to-end p99 {perf_p99 * 1e6:.0f} us")


def io(prom, work):
    c = Checks()
    write, read = perf_report(work, "write"), perf_report(work, "read")
    t0, t1, t2 = (read_time(work, n) for n in ("t_write_start", "t_write_end", "t_read_end"))
    c.check(write["total"]["errors"] == 0 and read["total"]["errors"] == 0, "lamina-perf saw no errors")
    c.check(write["total"]["write"]["ios"] > 1000 and read["total"]["read"]["ios"] > 1000,
            f"lamina-perf did real work ({write['total']['write']['ios']} writes, "
            f"{read['total']['read']['ios']} reads)")
    check_counters(prom, c, "write", write)
    check_counters(prom, c, "read", read)
    check_rates(prom, c, "write", write, t0, t1)
    check_rates(prom, c, "read", read, t1, t2)
    check_latency(prom, c, "write", write, t0, t1)
    check_latency(prom, c, "read", read, t1, t2)
    errors = prom.scalar(f"sum(lamina_command_errors_total{{{JOB}}})")
    c.check(errors == 0, f"no command errors ({errors:.0f})")
    inflight = prom.scalar(f"sum(lamina_commands_in_flight{{{JOB}}})")
    c.check(inflight == 0, f"nothing in flight after the load ({inflight:.0f})")
    conns = prom.scalar(f"lamina_connections{{{JOB}}}")
    c.check(conns == 0, f"lamina-perf's connections are closed ({conns:.0f})")
    accepted = prom.scalar(f"lamina_connections_accepted_total{{{JOB}}}")
    want = 2 * (1 + PERF_QUEUES)
    c.check(accepted == want, f"connections accepted {accepted:.0f} = 2 runs x (admin + {PERF_QUEUES} I/O)")
    capsules = prom.scalar(f'lamina_pdus_received_total{{{JOB}, type="capsule_cmd"}}')
    writes = prom.scalar(f'sum(lamina_commands_total{{{JOB}, opcode="write"}})')
    reads = prom.scalar(f'sum(lamina_commands_total{{{JOB}, opcode="read"}})')
    c.check(capsules >= writes + reads, f"capsules received {capsules:.0f} >= I/O commands {writes + reads:.0f}")
    c.check(prom.scalar(f"count(lamina_build_info{{{JOB}}})") == 1, "lamina_build_info is exposed")
    c.check(prom.scalar(f"process_resident_memory_bytes{{{JOB}}}") > 0, "the process collector is exposed")
    thin = prom.scalar(f'lamina_lvol_allocated_clusters{{{JOB}, lvol="vol0"}}')
    c.check(thin > 0, f"the thin lvol vol0 allocated clusters under the writes ({thin:.0f})")
    targets = prom.get("/api/v1/targets")["activeTargets"]
    lamina = [t for t in targets if t["labels"].get("job") == "lamina"]
    c.check(len(lamina) == 1 and lamina[0]["health"] == "up" and not lamina[0]["lastError"],
            f"scrape health: {[(t['health'], t['lastError']) for t in lamina]}")
    c.exit()


SUBSTITUTIONS = {
    "$__rate_interval": "5s",
    "$__interval": "1s",
    "$__range": "1m",
}


def promql(expr):
    for k, v in SUBSTITUTIONS.items():
        expr = expr.replace(k, v)
    # Template variables: every value.
    return re.sub(r"\$\{?[a-z_]+\}?", ".*", expr)


def dashboard(prom, path):
    c = Checks()
    with open(path) as f:
        d = json.load(f)
    now = time.time()
    for p in d["panels"]:
        for t in p.get("targets", []):
            expr = promql(t["expr"])
            try:
                data = prom.get("/api/v1/query_range", query=expr, start=f"{now - 60:.0f}",
                                end=f"{now:.0f}", step="1")
            except (RuntimeError, OSError) as e:
                c.check(False, f"{p['title']} [{t['refId']}]: {e}")
                continue
            values = [v for s in data["result"] for _, v in s["values"]
                      if not math.isnan(float(v))]
            # Expressions filtered with "> 0" show only what happened (errors, RPC calls):
            # empty is a valid answer for them. Everything else must have data.
            optional = re.search(r">\s*0\s*$", t["expr"]) is not None
            c.check(bool(values) or optional,
                    f"{p['title']} [{t['refId']}]: {len(data['result'])} series"
                    + (" (may be empty)" if optional and not values else ""))
    for v in d["templating"]["list"]:
        m = re.fullmatch(r"label_values\((.*),\s*([a-z_]+)\)", v["definition"])
        if not m:
            c.check(False, f"variable {v['name']}: unexpected query {v['definition']}")
            continue
        series = prom.get("/api/v1/series", **{"match[]": promql(m.group(1))})
        values = {s.get(m.group(2)) for s in series} - {None}
        c.check(bool(values), f"variable {v['name']}: {sorted(values)}")
    c.exit()


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    cmd, prom = sys.argv[1], Prom(sys.argv[2])
    if cmd == "wait-up":
        sys.exit(wait_up(prom))
    if cmd == "io" and len(sys.argv) == 4:
        io(prom, sys.argv[3])
    if cmd == "dashboard" and len(sys.argv) == 4:
        dashboard(prom, sys.argv[3])
    sys.exit(__doc__)


if __name__ == "__main__":
    main()
