"""The chanx Grafana dashboards, as code (grafana-foundation-sdk).

``grafana/dashboards/chanx-overview.json`` is generated from this module and
committed, so Grafana's file provisioning (``grafana/provisioning/``) loads it
without Python::

    python grafana/dashboards.py          # write the JSON
    python grafana/dashboards.py --check  # exit 1 if the JSON is stale

Every Prometheus expression uses only metrics and labels chanx exports
(``docs/telemetry.md``) plus ``up``; ``tests/ops/test_promql.py`` enforces it.
The ``namespace`` and ``pod`` labels come from the scrape (the Prometheus
Operator adds them); outside Kubernetes both variables are empty and every
selector still matches, because ``label=""`` matches a missing label.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from chanx_dashboards.overview import overview
from grafana_foundation_sdk.cog.encoder import JSONEncoder

__all__ = ["OUTPUT", "main", "render"]

OUTPUT = Path(__file__).resolve().parent / "dashboards" / "chanx-overview.json"


def render() -> str:
    """The dashboard's JSON text, as committed."""
    return json.dumps(overview(), cls=JSONEncoder, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the dashboard JSON, or with ``--check`` only compare it."""
    parser = argparse.ArgumentParser(description="Generate the chanx dashboards.")
    parser.add_argument("--check", action="store_true", help="exit 1 if stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if OUTPUT.exists() and OUTPUT.read_text(encoding="utf-8") == text:
            return 0
        print(
            f"{OUTPUT.name} is stale: run python grafana/dashboards.py", file=sys.stderr
        )
        return 1
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
