"""``make audit`` (scripts/audit.py): pip-audit that cannot pass silently."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from scripts.audit import INCOMPLETE, OK, REPO_ROOT, VULNERABLE, summarize


def dep(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "version": "1.0", "vulns": [], **extra}


def test_clean_report_passes() -> None:
    code, message = summarize({"dependencies": [dep("django"), dep("pydantic")]})
    assert (code, message) == (OK, "2 packages audited: no known vulnerabilities")


def test_vulnerabilities_fail_with_their_fixes() -> None:
    vuln = {"id": "PYSEC-2099-1", "fix_versions": ["1.0.1"], "description": "..."}
    report = {"dependencies": [dep("django", vulns=[vuln]), dep("pydantic")]}
    code, message = summarize(report)
    assert code == VULNERABLE
    assert "django 1.0: PYSEC-2099-1 (fix: 1.0.1)" in message


@pytest.mark.parametrize(
    "report",
    [
        # What pip-audit reports (with exit code 0!) when the service does not
        # know the versions or cannot be reached.
        {"dependencies": [{"name": "django", "skip_reason": "not found on PyPI"}]},
        {"dependencies": []},
        {"dependencies": [dep("pydantic"), {"name": "x", "skip_reason": "down"}]},
    ],
)
def test_skipped_packages_are_never_a_pass(report: dict[str, Any]) -> None:
    code, message = summarize(report)
    assert code == INCOMPLETE
    assert "not a pass" in message


def test_pip_audit_that_did_not_run_is_reported() -> None:
    code, message = summarize(None, "Traceback...\nConnectionError: api.osv.dev")
    assert code == INCOMPLETE
    assert "ConnectionError: api.osv.dev" in message


def test_real_audit_says_clearly_what_it_did() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/audit.py"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = result.stdout + result.stderr
    # Whatever the network allows today, the verdict is explicit.
    expected = {
        OK: "no known vulnerabilities",
        VULNERABLE: "vulnerable package",
        INCOMPLETE: "This is not a pass",
    }
    assert result.returncode in expected, output
    assert expected[result.returncode] in output
