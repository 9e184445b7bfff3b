"""``make audit``: pip-audit over the installed environment, never a silent pass.

pip-audit prints "No known vulnerabilities found" and exits 0 even when it
could not look a single package up (the vulnerability service unreachable,
or versions it does not know). This wrapper reads its JSON report and exits:

- 0: every installed package was audited and none has a known vulnerability;
- 1: at least one known vulnerability (listed with the fixed versions);
- 2: the audit is incomplete: pip-audit failed, or packages were skipped.

Environment: ``AUDIT_SERVICE`` (``pypi`` or ``osv``, default pip-audit's),
``PIP_AUDIT`` (the pip-audit executable, default ``.venv/bin/pip-audit``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

OK, VULNERABLE, INCOMPLETE = 0, 1, 2
REPO_ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 600


def summarize(report: dict[str, Any] | None, stderr: str = "") -> tuple[int, str]:
    """The exit code and a human summary of a ``pip-audit --format json`` report."""
    if report is None:
        last = stderr.strip().splitlines()[-1:] or ["(no output)"]
        return INCOMPLETE, f"audit FAILED to run: {last[0]}"
    deps = report.get("dependencies", [])
    skipped = [d for d in deps if d.get("skip_reason")]
    audited = [d for d in deps if not d.get("skip_reason")]
    vulnerable = [d for d in audited if d.get("vulns")]
    lines = []
    for dep in vulnerable:
        for vuln in dep["vulns"]:
            fixes = ", ".join(vuln.get("fix_versions") or []) or "no fix yet"
            lines.append(
                f"  {dep['name']} {dep['version']}: {vuln['id']} (fix: {fixes})"
            )
    if vulnerable:
        head = f"{len(vulnerable)} vulnerable package(s) of {len(audited)} audited:"
        return VULNERABLE, "\n".join([head, *lines])
    if skipped or not audited:
        names = ", ".join(sorted(d["name"] for d in skipped)[:10])
        return INCOMPLETE, (
            f"audit INCOMPLETE: {len(skipped)} of {len(deps)} package(s) could not "
            f"be looked up (e.g. {names}); the vulnerability service may be "
            "unreachable or not know these versions. This is not a pass."
        )
    return OK, f"{len(audited)} packages audited: no known vulnerabilities"


def run_pip_audit() -> tuple[dict[str, Any] | None, str]:
    """Run pip-audit on the installed environment; its JSON report and stderr."""
    executable = os.environ.get("PIP_AUDIT", str(REPO_ROOT / ".venv/bin/pip-audit"))
    command = [
        executable,
        "--local",
        "--skip-editable",  # chanx itself, installed from this checkout
        "--format",
        "json",
        "--progress-spinner",
        "off",
    ]
    if os.environ.get("AUDIT_SERVICE"):
        command += ["--vulnerability-service", os.environ["AUDIT_SERVICE"]]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, str(exc)
    try:
        report = json.loads(result.stdout)
    except ValueError:
        return None, result.stderr
    return (report if isinstance(report, dict) else None), result.stderr


def main() -> int:
    report, stderr = run_pip_audit()
    code, message = summarize(report, stderr)
    print(message, file=sys.stderr if code else sys.stdout)
    return code


if __name__ == "__main__":
    sys.exit(main())
