"""The alerting rules: valid for promtool, unit-tested, documented, shipped.

``promtool`` (Debian's ``prometheus`` package, ``make prometheus``) checks the
rule file and runs ``deploy/prometheus/tests/``, where every alert has a case
that fires and one that must not.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS / "rules.yml"
RUNBOOK = ROOT / "docs" / "runbook.md"
MANIFEST = ROOT / "deploy" / "base" / "prometheusrule.yaml"
UNIT_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool not found: install Debian's prometheus (make prometheus)")
    return subprocess.run(
        [binary, *args], capture_output=True, text=True, timeout=60, check=False
    )


def alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_promtool_accepts_the_rule_file() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    assert UNIT_TESTS, "no promtool tests in deploy/prometheus/tests"
    result = promtool("test", "rules", *map(str, UNIT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    fired: set[str] = set()
    quiet: set[str] = set()
    for path in UNIT_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert names - fired == set(), "alerts without a firing case"
    assert names - quiet == set(), "alerts without a not-firing case"


def runbook_anchors() -> set[str]:
    # GitHub's anchors for "## Heading": lower case, spaces to dashes.
    headings = re.findall(r"^## (.+)$", RUNBOOK.read_text(), flags=re.MULTILINE)
    return {heading.strip().lower().replace(" ", "-") for heading in headings}


@pytest.mark.parametrize("rule", alerts(), ids=lambda rule: str(rule["alert"]))
def test_alert_is_labelled_and_documented(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in {"critical", "warning"}
    annotations = rule["annotations"]
    assert set(annotations) == {"summary", "description", "runbook_url"}
    page, _, anchor = annotations["runbook_url"].partition("#")
    assert (ROOT / page).resolve() == RUNBOOK
    assert anchor == rule["alert"].lower()
    assert anchor in runbook_anchors()


def test_committed_prometheusrule_is_generated_from_the_rule_file() -> None:
    result = subprocess.run(
        [sys.executable, str(PROMETHEUS / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    manifest = yaml.safe_load(MANIFEST.read_text())
    assert manifest["kind"] == "PrometheusRule"
    assert manifest["apiVersion"] == "monitoring.coreos.com/v1"
    assert manifest["metadata"]["name"] == "chanx"
    assert manifest["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


def load_generator() -> Any:
    spec = importlib.util.spec_from_file_location(
        "generate", PROMETHEUS / "generate.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_check_mode_reports_a_stale_manifest(tmp_path: Path) -> None:
    generate = load_generator()
    stale = tmp_path / "prometheusrule.yaml"
    stale.write_text(generate.render().replace("severity: critical", "severity: info"))
    assert not generate.check(stale)
    stale.write_text(generate.render())
    assert generate.check(stale)
