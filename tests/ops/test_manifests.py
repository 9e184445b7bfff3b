"""The Kubernetes kit (``deploy/``): renders, validates, and points at real things.

Each overlay is rendered with ``kubectl kustomize`` and validated with
``kubernetes-validate --strict`` for Kubernetes 1.29 and 1.33; the Prometheus
Operator objects against the CRD shape in ``manifests_crds``. The other
tests follow every reference the way Kubernetes would (selectors, named
ports, Secret keys, environment names the settings read), and the e2e test
in ``test_manifests_e2e.py`` runs the demo with the rendered environment.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema  # type: ignore[import-untyped]
import opentelemetry.sdk.environment_variables as otel_env
import pytest
import yaml

from tests.ops.manifests_crds import PROMETHEUS_RULE, SERVICE_MONITOR
from tests.ops.manifests_lookup import (
    DEFAULT_PORTS,
    FIELDS,
    allows,
    app,
    container_port,
    in_cluster_server,
    policy_for,
    targets,
)
from tests.ops.manifests_render import (
    DEPLOY,
    OVERLAYS,
    ROOT,
    Workload,
    containers,
    external_secrets,
    find,
    kubernetes_validate,
    render,
    resolve_env,
    selects,
    workloads,
)

VERSIONS = ("1.29.0", "1.33.0")
CRDS = {"ServiceMonitor": SERVICE_MONITOR, "PrometheusRule": PROMETHEUS_RULE}
RULES = DEPLOY / "prometheus" / "rules.yml"
Obj = dict[str, Any]


def settings_names() -> set[str]:
    """Environment variables the demo settings and chanx itself read."""
    names: set[str] = set()
    sources = [
        ROOT / "example" / "config" / "settings.py",
        *(ROOT / "chanx").rglob("*.py"),
    ]
    for path in sources:
        text = path.read_text()
        names |= set(
            re.findall(r'(?:environ\.get|_env_flag|_env_list)\(\s*"(\w+)"', text)
        )
        names |= set(re.findall(r'environ\["(\w+)"\]', text))
        # Names kept in constants: FORMAT_ENV = "CHANX_LOG_FORMAT".
        names |= set(re.findall(r'^_?[A-Z_]*ENV\w* = "(\w+)"', text, re.MULTILINE))
    return names


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_passes_kubernetes_validate_strict(
    overlay: str, version: str, tmp_path: Path
) -> None:
    text, objs = render(overlay)
    path = tmp_path / f"{overlay}.yaml"
    path.write_text(text)
    result = kubernetes_validate(path, version)
    assert result.returncode == 0, result.stdout + result.stderr
    minor = version.rsplit(".", 1)[0]
    passed = re.findall(
        rf"passed for resource (\S+) against version {minor}\b", result.stdout
    )
    builtin = [
        f"{obj['kind'].lower()}/{obj['metadata']['name']}"
        for obj in objs
        if obj["kind"] not in CRDS
    ]
    # Every built-in object really was checked; only the CRD kinds were not.
    assert sorted(passed) == sorted(builtin)
    skipped = re.findall(r"Couldn't find schema for kind (\w+)", result.stdout)
    assert sorted(skipped) == sorted(obj["kind"] for obj in objs if obj["kind"] in CRDS)


@pytest.mark.parametrize("version", VERSIONS)
def test_strict_validation_catches_a_misspelled_field(
    version: str, tmp_path: Path
) -> None:
    _, objs = render("dev")
    _, container = app(objs)
    container["readinesProbe"] = container.pop("readinessProbe")
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump_all(objs))
    result = kubernetes_validate(path, version)
    assert result.returncode != 0
    assert "readinesProbe" in result.stdout


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_prometheus_operator_objects_match_the_crd_shape(overlay: str) -> None:
    _, objs = render(overlay)
    for kind, schema in CRDS.items():
        (obj,) = [o for o in objs if o["kind"] == kind]
        jsonschema.Draft202012Validator(schema).validate(obj)
    # The PrometheusRule carries exactly the groups promtool tests.
    rule = find(objs, "PrometheusRule", "chanx")
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


def _drop_selector(obj: Obj) -> None:
    del obj["spec"]["selector"]


def _bad_interval(obj: Obj) -> None:
    obj["spec"]["endpoints"][0]["interval"] = "30 seconds"


def _typo(obj: Obj) -> None:
    obj["spec"]["endpoints"][0]["targetport"] = 8000


@pytest.mark.parametrize("break_it", [_drop_selector, _bad_interval, _typo])
def test_crd_schema_rejects_broken_service_monitors(break_it: Any) -> None:
    _, objs = render("dev")
    monitor = copy.deepcopy(find(objs, "ServiceMonitor", "chanx-demo"))
    break_it(monitor)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(SERVICE_MONITOR).validate(monitor)


def test_crd_schema_rejects_broken_prometheus_rules() -> None:
    _, objs = render("dev")
    rule = find(objs, "PrometheusRule", "chanx")
    validator = jsonschema.Draft202012Validator(PROMETHEUS_RULE)
    no_expr = copy.deepcopy(rule)
    del no_expr["spec"]["groups"][0]["rules"][0]["expr"]
    both = copy.deepcopy(rule)
    both["spec"]["groups"][0]["rules"][0]["record"] = "chanx:up"
    bad_for = copy.deepcopy(rule)
    bad_for["spec"]["groups"][0]["rules"][0]["for"] = "five minutes"
    for broken in (no_expr, both, bad_for):
        assert not validator.is_valid(broken)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_monitor_scrapes_metrics_on_every_app_pod(overlay: str) -> None:
    _, objs = render(overlay)
    monitor = find(objs, "ServiceMonitor", "chanx-demo")
    services = [
        obj
        for obj in objs
        if obj["kind"] == "Service"
        and selects(monitor["spec"]["selector"], obj["metadata"].get("labels", {}))
    ]
    assert [s["metadata"]["name"] for s in services] == ["chanx-demo-metrics"]
    (service,) = services
    assert service["metadata"]["namespace"] == monitor["metadata"]["namespace"]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    (port,) = [p for p in service["spec"]["ports"] if p["name"] == endpoint["port"]]
    workload, _ = app(objs)
    assert targets(objs, service["spec"]["selector"]) == {repr(workload)}
    assert container_port(workload, port["targetPort"]) == 8000
    # Unready pods too: ChanxNotReady alerts on their metrics.
    assert service["spec"]["publishNotReadyAddresses"] is True
    assert service["spec"]["clusterIP"] == "None"
    # The job label the alerting rules use.
    job = service["metadata"]["labels"][monitor["spec"]["jobLabel"]]
    assert set(re.findall(r'job="([^"]+)"', RULES.read_text())) == {job}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_selectors_match_the_pods_they_are_meant_for(overlay: str) -> None:
    _, objs = render(overlay)
    expected = {
        "chanx-demo": "Deployment/chanx-demo",
        "chanx-demo-metrics": "Deployment/chanx-demo",
        "otel-collector": "Deployment/otel-collector",
        "redis": "StatefulSet/redis",
        "postgres": "StatefulSet/postgres",
    }
    for workload in workloads(objs):
        if workload.kind != "Job":
            assert selects(workload.obj["spec"]["selector"], workload.labels), workload
    checked = 0
    for obj in objs:
        spec = obj.get("spec", {})
        selector = {
            "Service": spec.get("selector"),
            "PodDisruptionBudget": spec.get("selector"),
            "NetworkPolicy": spec.get("podSelector"),
        }.get(obj["kind"])
        if selector is not None:
            name = obj["metadata"]["name"]
            assert targets(objs, selector) == {expected[name]}, f"{obj['kind']}/{name}"
            checked += 1
    assert checked >= 6
    hpa = find(objs, "HorizontalPodAutoscaler", "chanx-demo")
    ref = hpa["spec"]["scaleTargetRef"]
    assert find(objs, ref["kind"], ref["name"])["apiVersion"] == ref["apiVersion"]
    for workload in workloads(objs):
        if workload.kind == "StatefulSet":
            find(objs, "Service", workload.obj["spec"]["serviceName"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_let_the_app_reach_what_its_env_points_at(
    overlay: str,
) -> None:
    _, objs = render(overlay)
    workload, container = app(objs)
    env = resolve_env(objs, container, overlay, FIELDS)
    egress = policy_for(objs, workload)["spec"]["egress"]
    dns = [
        rule for rule in egress if any(p["port"] == 53 for p in rule.get("ports", []))
    ]
    assert {p["protocol"] for rule in dns for p in rule["ports"]} == {"UDP", "TCP"}
    for variable in ("REDIS_URL", "DATABASE_URL", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        url = urlsplit(env[variable])
        port = url.port or DEFAULT_PORTS[url.scheme]
        assert allows(egress, None, port, workload), (variable, port)
        found = in_cluster_server(objs, env[variable])
        if found is None:
            # Managed services outside the cluster, in prod only.
            assert overlay == "prod", variable
            assert variable != "OTEL_EXPORTER_OTLP_ENDPOINT"
            continue
        server, target = found
        ingress = policy_for(objs, server)["spec"]["ingress"]
        assert allows(ingress, workload, target, server), (variable, target)
    # Clients reach the app on the port its Services forward to.
    app_ingress = policy_for(objs, workload)["spec"]["ingress"]
    for name in ("chanx-demo", "chanx-demo-metrics"):
        for port in find(objs, "Service", name)["spec"]["ports"]:
            target = container_port(workload, port["targetPort"])
            assert allows(app_ingress, None, target, workload)


def test_migration_job_reaches_the_dev_database() -> None:
    _, objs = render("dev")
    job = Workload(find(objs, "Job", "chanx-demo-migrate"))
    env = resolve_env(objs, job.pod["containers"][0], "dev", FIELDS)
    found = in_cluster_server(objs, env["DATABASE_URL"])
    assert found is not None
    server, target = found
    assert server.name == "postgres"
    assert allows(policy_for(objs, server)["spec"]["ingress"], job, target, server)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_app_env_names_are_ones_the_settings_read(overlay: str) -> None:
    _, objs = render(overlay)
    known = settings_names()
    standard = {name for name in dir(otel_env) if name.startswith("OTEL_")}
    for workload in workloads(objs):
        if not workload.name.startswith("chanx-demo"):
            continue
        for container in containers(workload.pod):
            env = resolve_env(objs, container, overlay, FIELDS)
            raw = " ".join(item.get("value", "") for item in container.get("env", []))
            for name in env:
                where = (workload, container["name"], name)
                if name in known or name in standard:
                    continue
                # Otherwise only a piece of another value (pod name, namespace).
                assert f"$({name})" in raw, where
            assert "$(" not in " ".join(env.values()), f"unresolved in {workload}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_sampler_settings_are_understood_by_the_sdk(
    overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    _, objs = render(overlay)
    _, container = app(objs)
    env = resolve_env(objs, container, overlay, FIELDS)
    for name in ("OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"):
        monkeypatch.setenv(name, env[name])
    description = TracerProvider().sampler.get_description()
    ratio = float(env["OTEL_TRACES_SAMPLER_ARG"])
    assert description.startswith(f"ParentBased{{root:TraceIdRatioBased{{{ratio}}}")
    assert ratio == {"dev": 1.0, "prod": 0.1}[overlay]


def _secret_keys(objs: list[Obj]) -> dict[str, set[str]]:
    """Secret name -> keys the rendered objects read from it."""
    used: dict[str, set[str]] = {}
    # A whole Secret as environment: its keys are read as ${env:KEY} by a
    # configuration file (the collector's).
    config_text = " ".join(
        value
        for obj in objs
        if obj["kind"] == "ConfigMap"
        for value in obj.get("data", {}).values()
    )
    read_by_config = set(re.findall(r"\$\{env:(\w+)\}", config_text))
    for workload in workloads(objs):
        for container in containers(workload.pod):
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    used.setdefault(ref["name"], set()).add(ref["key"])
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    name = source["secretRef"]["name"]
                    used.setdefault(name, set()).update(read_by_config)
    for monitor in (o for o in objs if o["kind"] == "ServiceMonitor"):
        for endpoint in monitor["spec"]["endpoints"]:
            ref = endpoint.get("authorization", {}).get("credentials")
            if ref:
                used.setdefault(ref["name"], set()).add(ref["key"])
    return used


def test_prod_secret_examples_list_exactly_the_keys_the_manifests_read() -> None:
    _, objs = render("prod")
    rendered = {o["metadata"]["name"] for o in objs if o["kind"] == "Secret"}
    assert not rendered, "prod must not ship credentials"
    used = _secret_keys(objs)
    examples = {name: set(values) for name, values in external_secrets("prod").items()}
    assert used == examples
    # Every documented creation command names its own file.
    folder = DEPLOY / "overlays" / "prod" / "secrets.example"
    for name in examples:
        text = (folder / f"{name}.env").read_text()
        assert f"create secret generic {name} --from-env-file={name}.env" in text
