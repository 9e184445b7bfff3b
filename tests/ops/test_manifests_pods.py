"""The pods of the Kubernetes kit: hardening, shutdown budget, overlays, image.

What a cluster would only tell at runtime (a pod refused by the "restricted"
Pod Security Standard, a drain cut short by SIGKILL, a collector config
naming a component it does not define, an image that cannot start) is
checked here from the rendered manifests, the collector configuration and
the Dockerfile.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from chanx.telemetry.config import DEFAULTS as TELEMETRY_DEFAULTS
from chanx.telemetry.sdk import DEFAULT_SHUTDOWN_TIMEOUT
from tests.ops.manifests_docker import Dockerfile, ignored
from tests.ops.manifests_lookup import FIELDS, app
from tests.ops.manifests_render import (
    OVERLAYS,
    ROOT,
    Workload,
    containers,
    find,
    render,
    resolve_env,
    selects,
    workloads,
)

Obj = dict[str, Any]
DOCKERFILE = Dockerfile.parse(ROOT / "Dockerfile")
# Seconds between the drain's end and SIGKILL that nothing else accounts for.
MARGIN = 5


def option(argv: list[str], name: str, default: str | None = None) -> str:
    """The value after ``name`` in a command line."""
    if name in argv:
        return argv[argv.index(name) + 1]
    assert default is not None, f"{name} missing from {argv}"
    return default


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_meets_the_restricted_pod_security_standard(overlay: str) -> None:
    _, objs = render(overlay)
    (namespace,) = [obj for obj in objs if obj["kind"] == "Namespace"]
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    for workload in workloads(objs):
        pod = workload.pod
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False, workload
        mounts_needed = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
        for container in containers(pod):
            where = (workload, container["name"])
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"]["drop"] == ["ALL"], where
            assert context["readOnlyRootFilesystem"] is True, where
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), where
            assert "memory" in resources["limits"], where
            mounted = {m["name"] for m in container.get("volumeMounts", [])}
            mounts_needed -= mounted
        assert not mounts_needed, f"{workload}: emptyDir volumes nobody mounts"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_chanx_pods_run_the_image_as_its_non_root_user(overlay: str) -> None:
    _, objs = render(overlay)
    uid, _, gid = DOCKERFILE.user.partition(":")
    assert uid.isdigit(), "USER must be numeric for runAsNonRoot"
    assert int(uid) != 0
    images = set()
    for workload in workloads(objs):
        if workload.name.startswith("chanx-demo"):
            context = workload.pod["securityContext"]
            assert (context["runAsUser"], context["runAsGroup"]) == (int(uid), int(gid))
            for container in containers(workload.pod):
                images.add(container["image"])
                # Read-only root filesystem: /tmp is the one writable place.
                tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
                assert tmp, (workload, container["name"])
    assert len(images) == 1, images
    (image,) = images
    if overlay == "dev":
        assert image == "chanx-demo:dev"
    else:
        name, _, tag = image.rpartition(":")
        assert "/" in name
        assert re.fullmatch(r"\d+\.\d+\.\d+", tag), image


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_shutdown_budget_fits_the_grace_period(overlay: str) -> None:
    _, objs = render(overlay)
    workload, container = app(objs)
    command = container["command"]
    # The Deployment runs what `docker run` of the image runs.
    assert command == DOCKERFILE.cmd
    assert command[:3] == ["python", "-m", "chanx.serve"]
    drain = float(option(command, "--drain-timeout"))
    assert drain == 30
    leftover = float(option(command, "--timeout-graceful-shutdown"))
    env = resolve_env(objs, container, overlay, FIELDS)
    flush = float(env.get("CHANX_TELEMETRY_SHUTDOWN_TIMEOUT", DEFAULT_SHUTDOWN_TIMEOUT))
    (sleep, seconds) = container["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep == "sleep"
    budget = float(seconds) + drain + leftover + flush + MARGIN
    assert workload.pod["terminationGracePeriodSeconds"] >= budget
    # One worker: no multiprocess metrics directory needed; several need one.
    if int(option(command, "--workers", "1")) > 1:
        assert "PROMETHEUS_MULTIPROC_DIR" in env


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_and_ports_agree_with_the_app(overlay: str) -> None:
    _, objs = render(overlay)
    _, container = app(objs)
    (port,) = container["ports"]
    assert option(container["command"], "--port") == str(port["containerPort"])
    assert DOCKERFILE.expose == [port["containerPort"]]
    paths = {}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        assert get["port"] == port["name"]
        paths[probe] = get["path"]
    assert paths == {
        "startupProbe": "/healthz",
        "livenessProbe": "/healthz",
        "readinessProbe": "/readyz",
    }
    # /readyz may take READYZ_TIMEOUT for its channel-layer round trip.
    readiness = container["readinessProbe"]
    assert readiness["timeoutSeconds"] > TELEMETRY_DEFAULTS["READYZ_TIMEOUT"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_scaling_bounds_and_metrics_protection(overlay: str) -> None:
    _, objs = render(overlay)
    workload, container = app(objs)
    # The HPA owns the replica count; an applied value would reset it.
    assert "replicas" not in workload.obj["spec"]
    hpa = find(objs, "HorizontalPodAutoscaler", "chanx-demo")["spec"]
    bounds = (hpa["minReplicas"], hpa["maxReplicas"])
    assert bounds == {"dev": (2, 4), "prod": (3, 20)}[overlay]
    (metric,) = hpa["metrics"]
    assert metric["resource"]["name"] == "cpu"
    # A utilization target needs a CPU request to be a percentage of.
    assert "cpu" in container["resources"]["requests"]
    pdb = find(objs, "PodDisruptionBudget", "chanx-demo")["spec"]
    assert pdb["maxUnavailable"] < hpa["minReplicas"]
    # /metrics needs a token in prod, sent by the ServiceMonitor (issue 6).
    token = [e for e in container["env"] if e["name"] == "METRICS_TOKEN"]
    (endpoint,) = find(objs, "ServiceMonitor", "chanx-demo")["spec"]["endpoints"]
    if overlay == "dev":
        assert not token
        assert "authorization" not in endpoint
    else:
        (item,) = token
        assert endpoint["authorization"]["type"] == "Bearer"
        assert (
            endpoint["authorization"]["credentials"]
            == (item["valueFrom"]["secretKeyRef"])
        )


def collector(objs: list[Obj], overlay: str) -> tuple[Workload, Obj, dict[str, str]]:
    """The collector Deployment, its parsed configuration and environment."""
    workload = Workload(find(objs, "Deployment", "otel-collector"))
    (container,) = workload.pod["containers"]
    (arg,) = [a for a in container["args"] if a.startswith("--config=")]
    path = arg.removeprefix("--config=")
    (mount,) = [
        m for m in container["volumeMounts"] if path.startswith(m["mountPath"] + "/")
    ]
    (volume,) = [v for v in workload.pod["volumes"] if v["name"] == mount["name"]]
    data = find(objs, "ConfigMap", volume["configMap"]["name"])["data"]
    config = yaml.safe_load(data[path.removeprefix(mount["mountPath"] + "/")])
    return workload, config, resolve_env(objs, container, overlay, {})


def _port(endpoint: str) -> int:
    host, _, port = endpoint.rpartition(":")
    # Listen on every interface: 0.0.0.0 (newer collectors default to localhost).
    assert host == "0.0.0.0"
    return int(port)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_collector_config_is_complete_and_matches_its_ports(overlay: str) -> None:
    _, objs = render(overlay)
    workload, config, env = collector(objs, overlay)
    (pipeline,) = config["service"]["pipelines"].values()
    for section in ("receivers", "processors", "exporters"):
        # Used means defined, and defined means used.
        assert set(pipeline[section]) == set(config[section]), section
    assert pipeline["processors"][0] == "memory_limiter"
    assert pipeline["processors"][-1] == "batch"
    protocols = config["receivers"]["otlp"]["protocols"]
    ports = {
        p["name"]: p["containerPort"] for p in workload.pod["containers"][0]["ports"]
    }
    assert _port(protocols["grpc"]["endpoint"]) == ports["otlp-grpc"]
    assert _port(protocols["http"]["endpoint"]) == ports["otlp-http"]
    assert _port(config["extensions"]["health_check"]["endpoint"]) == ports["health"]
    assert config["service"]["extensions"] == ["health_check"]
    referenced = set(re.findall(r"\$\{env:(\w+)\}", yaml.safe_dump(config)))
    assert referenced <= set(env), referenced - set(env)
    exporters = set(config["exporters"])
    assert exporters == {"dev": {"debug"}, "prod": {"otlphttp/backend"}}[overlay]
    # The app sends OTLP/HTTP to the collector's Service, on the HTTP port.
    _, app_container = app(objs)
    app_env = resolve_env(objs, app_container, overlay, FIELDS)
    url = urlsplit(app_env["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert app_env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
    service = find(objs, "Service", str(url.hostname))
    assert selects(service["spec"]["selector"], workload.labels)
    (port,) = [p for p in service["spec"]["ports"] if p["port"] == url.port]
    assert port["targetPort"] == "otlp-http"


def test_dockerfile_copies_what_exists_and_runs_the_demo() -> None:
    dockerignore = ROOT / ".dockerignore"
    for sources, _ in DOCKERFILE.copies:
        for name in sources:
            assert (ROOT / name).exists(), name
            assert not ignored(name, dockerignore), f"{name} is dockerignored"
    for path in ("chanx/__init__.py", "example/manage.py", "example/chat/models.py"):
        assert not ignored(path, dockerignore), path
    for path in ("example/db.sqlite3", ".venv/bin/python", "chanx/__pycache__/x.pyc"):
        assert ignored(path, dockerignore), path
    pyproject = (ROOT / "pyproject.toml").read_text()
    # pip builds chanx from pyproject.toml, which needs its readme file.
    (readme,) = re.findall(r'^readme = "([^"]+)"', pyproject, re.MULTILINE)
    assert any(readme in sources for sources, _ in DOCKERFILE.copies)
    assert re.search(r"^demo = \[", pyproject, re.MULTILINE)
    assert '".[demo]"' in (ROOT / "Dockerfile").read_text()
    # example/ becomes the working directory, where `config.asgi` must be.
    (final,) = [c for c in DOCKERFILE.final_copies if c[0] == ["example/"]]
    assert final[1] in ("./", DOCKERFILE.workdir)
    assert final[2] == DOCKERFILE.workdir
    module, _, attribute = DOCKERFILE.cmd[3].partition(":")
    asgi = ROOT / "example" / (module.replace(".", "/") + ".py")
    assert f"\n{attribute} = " in asgi.read_text()
    settings = DOCKERFILE.env["DJANGO_SETTINGS_MODULE"].replace(".", "/") + ".py"
    assert (ROOT / "example" / settings).exists()
