"""Validates deploy/kubernetes/*.yaml offline: schemas, then the references between manifests.

Run by deploy/test/kubernetes.sh inside a virtualenv with pinned packages from PyPI:
- kubernetes-validate ships the JSON schemas of every built-in kind for Kubernetes 1.25-1.37,
  including "strict" variants that reject unknown fields (a misspelt `livenesProbe` is an error,
  not a silently ignored key). Each manifest is checked against several Kubernetes versions.
- cloudcoil-models-prometheus-operator ships pydantic models generated from the Prometheus
  Operator's CRDs (v0.80.1). The ServiceMonitor JSON schema is generated from that model at run
  time and made strict the same way (additionalProperties: false on every object), so the CRD's
  field names, types, patterns and enums are enforced. Nothing is downloaded at validation time.
Schemas say nothing about how manifests fit together, so cross-checks follow: selectors match
pod labels, named ports exist, probes hit /healthz and /readyz on the metrics port, the mounted
ConfigMap key exists and is valid TOML, the kustomization lists exactly the files here.
A self-test first proves each validator rejects a broken manifest, so a green run means something.

Usage: validate_kubernetes.py DIR [K8S_VERSION...]
"""

from __future__ import annotations

import copy
import json
import pathlib
import sys
import tomllib
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from cloudcoil.models.prometheus_operator.v1 import ServiceMonitor

DEFAULT_VERSIONS = ["1.30", "1.37"]
KUSTOMIZATION = "kustomization.yaml"
METRICS_PORT = 9440
NVME_PORT = 4420


class Failures:
    """Collects failures so one run reports all of them."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.passed = 0

    def check(self, ok: bool, what: str) -> None:
        if ok:
            self.passed += 1
            print(f"ok   - {what}")
        else:
            self.messages.append(what)
            print(f"FAIL - {what}")


def strict(schema: Any) -> Any:
    """Adds additionalProperties: false to every object schema that lists its properties."""
    if isinstance(schema, dict):
        out = {key: strict(value) for key, value in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


SERVICE_MONITOR_SCHEMA = strict(ServiceMonitor.model_json_schema(by_alias=True, mode="validation"))
# The generated schema lets apiVersion/kind default; a manifest must state them.
SERVICE_MONITOR_SCHEMA["required"] = sorted({"apiVersion", "kind", "metadata", "spec"})


def describe(error: jsonschema.ValidationError) -> str:
    """The most specific reason: a nullable field's anyOf hides the real error in its context."""
    while error.context:
        real = [e for e in error.context if not (e.validator == "type" and e.validator_value == "null")]
        error = max(real or error.context, key=lambda e: len(e.absolute_path))
    return f"{'.'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"


def schema_errors(doc: dict, version: str) -> list[str]:
    """Returns the schema violations of one manifest (empty when valid)."""
    if doc.get("apiVersion") == "monitoring.coreos.com/v1" and doc.get("kind") == "ServiceMonitor":
        validator = jsonschema.Draft202012Validator(SERVICE_MONITOR_SCHEMA)
        return [describe(error) for error in validator.iter_errors(doc)]
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{'.'.join(str(p) for p in error.path) or '<root>'}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError as error:
        return [f"no schema: {error.message}"]
    return []


def load_manifests(directory: pathlib.Path) -> list[tuple[str, dict]]:
    """Every YAML document of every *.yaml file but the kustomization, with its file name."""
    manifests = []
    for path in sorted(directory.glob("*.yaml")):
        if path.name == KUSTOMIZATION:
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                manifests.append((path.name, doc))
    return manifests


def by_kind(manifests: list[tuple[str, dict]], kind: str) -> list[dict]:
    return [doc for _, doc in manifests if doc.get("kind") == kind]


def one(manifests: list[tuple[str, dict]], kind: str, failures: Failures) -> dict:
    docs = by_kind(manifests, kind)
    failures.check(len(docs) == 1, f"exactly one {kind} (found {len(docs)})")
    return docs[0] if docs else {}


def self_test(manifests: list[tuple[str, dict]], version: str, failures: Failures) -> None:
    """Broken copies must be rejected: a validator that accepts everything fails here."""
    for doc in by_kind(manifests, "DaemonSet"):
        broken = copy.deepcopy(doc)
        container = broken["spec"]["template"]["spec"]["containers"][0]
        container["livenesProbe"] = container.pop("livenessProbe", {})
        failures.check(bool(schema_errors(broken, version)), "self-test: misspelt DaemonSet field is rejected")
        broken = copy.deepcopy(doc)
        broken["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = "two minutes"
        failures.check(bool(schema_errors(broken, version)), "self-test: wrongly typed DaemonSet field is rejected")
    for doc in by_kind(manifests, "ServiceMonitor"):
        broken = copy.deepcopy(doc)
        broken["spec"]["endpoints"][0]["intervall"] = "15s"
        failures.check(bool(schema_errors(broken, version)), "self-test: misspelt ServiceMonitor field is rejected")
        broken = copy.deepcopy(doc)
        broken["spec"]["endpoints"][0]["interval"] = "15 seconds"
        failures.check(bool(schema_errors(broken, version)), "self-test: ServiceMonitor interval pattern is enforced")
        broken = copy.deepcopy(doc)
        broken["spec"]["endpoints"][0]["scheme"] = "gopher"
        failures.check(bool(schema_errors(broken, version)), "self-test: ServiceMonitor scheme enum is enforced")
    unknown = {"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "x"}}
    failures.check(bool(schema_errors(unknown, version)), "self-test: a kind without a schema is an error")


def check_schemas(manifests: list[tuple[str, dict]], versions: list[str], failures: Failures) -> None:
    for version in versions:
        for name, doc in manifests:
            errors = schema_errors(doc, version)
            what = f"{name}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')} valid for Kubernetes {version}"
            failures.check(not errors, what + "".join(f"\n       {e}" for e in errors))


def selector_matches(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def named_ports(container: dict) -> dict[str, int]:
    return {port["name"]: port["containerPort"] for port in container.get("ports", []) if "name" in port}


def check_daemonset(manifests: list[tuple[str, dict]], failures: Failures) -> None:
    ds = one(manifests, "DaemonSet", failures)
    if not ds:
        return
    pod = ds["spec"]["template"]
    spec = pod["spec"]
    labels = pod["metadata"].get("labels", {})
    failures.check(selector_matches(ds["spec"]["selector"]["matchLabels"], labels), "DaemonSet selector matches its pod labels")
    failures.check(spec.get("hostNetwork") is True, "DaemonSet uses host networking")
    failures.check(spec.get("dnsPolicy") == "ClusterFirstWithHostNet", "host-network pod keeps cluster DNS (ClusterFirstWithHostNet)")
    failures.check(spec.get("terminationGracePeriodSeconds", 30) >= 60, "terminationGracePeriodSeconds leaves time to drain (>= 60 s)")
    pod_sc = spec.get("securityContext", {})
    failures.check(pod_sc.get("runAsNonRoot") is True and pod_sc.get("runAsUser") == 10001, "pod runs as non-root uid 10001")
    containers = {c["name"]: c for c in spec["containers"]}
    lamina = containers.get("lamina", {})
    failures.check(bool(lamina), "DaemonSet has a container named lamina")
    if not lamina:
        return
    ports = named_ports(lamina)
    failures.check(ports.get("metrics") == METRICS_PORT and ports.get("nvme-tcp") == NVME_PORT, "container ports: nvme-tcp 4420, metrics 9440")
    probes = {kind: lamina.get(kind, {}).get("httpGet", {}) for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
    failures.check(probes["livenessProbe"].get("path") == "/healthz", "liveness probe: GET /healthz")
    failures.check(probes["startupProbe"].get("path") == "/healthz", "startup probe: GET /healthz")
    failures.check(probes["readinessProbe"].get("path") == "/readyz", "readiness probe: GET /readyz")
    for kind, probe in probes.items():
        port = probe.get("port")
        failures.check(ports.get(port, port) == METRICS_PORT, f"{kind} targets the metrics port 9440")
    sc = lamina.get("securityContext", {})
    failures.check(sc.get("allowPrivilegeEscalation") is False and sc.get("readOnlyRootFilesystem") is True, "lamina container: no privilege escalation, read-only root")
    failures.check(sc.get("capabilities", {}).get("drop") == ["ALL"] and not sc.get("capabilities", {}).get("add"), "lamina container: all capabilities dropped, none added")
    failures.check("requests" in lamina.get("resources", {}), "lamina container declares resource requests")
    env = {e["name"]: e.get("value") for e in lamina.get("env", [])}
    failures.check(env.get("LAMINA_METRICS", "").endswith(f":{METRICS_PORT}"), "LAMINA_METRICS listens on 9440")
    failures.check(env.get("LAMINA_LISTEN", "").endswith(f":{NVME_PORT}"), "LAMINA_LISTEN listens on 4420")
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounts = {m["mountPath"]: m["name"] for m in lamina.get("volumeMounts", [])}
    data = volumes.get(mounts.get(env.get("LAMINA_DATA_DIR", "")), {})
    failures.check("hostPath" in data, "LAMINA_DATA_DIR is a mounted hostPath volume")
    sa = ds["spec"]["template"]["spec"].get("serviceAccountName")
    failures.check(any(d["metadata"]["name"] == sa for d in by_kind(manifests, "ServiceAccount")), f"ServiceAccount {sa} is defined")
    check_config_mount(manifests, lamina, volumes, env, failures)


def check_config_mount(manifests, lamina: dict, volumes: dict, env: dict, failures: Failures) -> None:
    config_path = env.get("LAMINA_CONFIG", "")
    mount = next((m for m in lamina.get("volumeMounts", []) if config_path.startswith(m["mountPath"] + "/")), None)
    failures.check(mount is not None, f"LAMINA_CONFIG {config_path} lies in a mounted volume")
    if mount is None:
        return
    source = volumes.get(mount["name"], {}).get("configMap", {})
    cm = next((d for d in by_kind(manifests, "ConfigMap") if d["metadata"]["name"] == source.get("name")), None)
    failures.check(cm is not None, f"ConfigMap {source.get('name')} mounted at {mount['mountPath']} is defined")
    if cm is None:
        return
    key = next((i["key"] for i in source.get("items", []) if mount["mountPath"] + "/" + i["path"] == config_path), pathlib.PurePath(config_path).name)
    text = cm.get("data", {}).get(key)
    failures.check(text is not None, f"ConfigMap key {key} exists")
    try:
        tomllib.loads(text or "")
        parsed = True
    except tomllib.TOMLDecodeError as error:
        print(f"       {error}")
        parsed = False
    failures.check(parsed, f"ConfigMap {key} is valid TOML")


def check_service_and_monitor(manifests: list[tuple[str, dict]], failures: Failures) -> None:
    ds = one(manifests, "DaemonSet", failures)
    svc = one(manifests, "Service", failures)
    sm = one(manifests, "ServiceMonitor", failures)
    if not (ds and svc and sm):
        return
    pod_labels = ds["spec"]["template"]["metadata"].get("labels", {})
    failures.check(selector_matches(svc["spec"].get("selector", {}), pod_labels), "Service selector matches the Lamina pods")
    failures.check(svc["spec"].get("clusterIP") == "None", "metrics Service is headless (each pod scraped)")
    lamina = next(c for c in ds["spec"]["template"]["spec"]["containers"] if c["name"] == "lamina")
    svc_ports = {p["name"]: p for p in svc["spec"]["ports"]}
    metrics = svc_ports.get("metrics", {})
    failures.check(named_ports(lamina).get(metrics.get("targetPort")) == METRICS_PORT, "Service port metrics targets the container's metrics port")
    failures.check(selector_matches(sm["spec"]["selector"]["matchLabels"], svc["metadata"].get("labels", {})), "ServiceMonitor selector matches the Service labels")
    failures.check(svc["metadata"]["namespace"] in sm["spec"].get("namespaceSelector", {}).get("matchNames", []), "ServiceMonitor watches the Service's namespace")
    for endpoint in sm["spec"]["endpoints"]:
        failures.check(endpoint.get("port") in svc_ports, f"ServiceMonitor endpoint port {endpoint.get('port')} is a Service port name")
        failures.check(endpoint.get("path", "/metrics") == "/metrics", "ServiceMonitor scrapes /metrics")


def check_namespaces(manifests: list[tuple[str, dict]], failures: Failures) -> None:
    namespaces = {doc["metadata"]["name"] for doc in by_kind(manifests, "Namespace")}
    for name, doc in manifests:
        if doc["kind"] == "Namespace":
            continue
        namespace = doc["metadata"].get("namespace")
        failures.check(namespace in namespaces, f"{name}: namespace {namespace} is defined here")


def check_kustomization(directory: pathlib.Path, failures: Failures) -> None:
    path = directory / KUSTOMIZATION
    failures.check(path.exists(), f"{KUSTOMIZATION} exists")
    if not path.exists():
        return
    kustomization = yaml.safe_load(path.read_text())
    listed = set(kustomization.get("resources", []))
    present = {p.name for p in directory.glob("*.yaml")} - {KUSTOMIZATION}
    failures.check(listed == present, f"{KUSTOMIZATION} lists every manifest (missing {sorted(present - listed)}, extra {sorted(listed - present)})")
    failures.check(kustomization.get("kind") == "Kustomization", f"{KUSTOMIZATION} is a Kustomization")


def main() -> int:
    directory = pathlib.Path(sys.argv[1])
    versions = sys.argv[2:] or DEFAULT_VERSIONS
    manifests = load_manifests(directory)
    failures = Failures()
    failures.check(bool(manifests), f"manifests found in {directory}")
    self_test(manifests, versions[-1], failures)
    check_schemas(manifests, versions, failures)
    check_daemonset(manifests, failures)
    check_service_and_monitor(manifests, failures)
    check_namespaces(manifests, failures)
    check_kustomization(directory, failures)
    print(f"validate_kubernetes: {failures.passed} passed, {len(failures.messages)} failed")
    return 1 if failures.messages else 0


if __name__ == "__main__":
    sys.exit(main())
