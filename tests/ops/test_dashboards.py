"""The Grafana dashboard is generated, committed fresh, and provisionable.

There is no Grafana server here: these tests check the generated JSON and the
provisioning files; ``test_dashboards_live.py`` runs the panel queries against
a real Prometheus.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ops.observe_queries import DASHBOARD, ROOT, load_dashboard

GRAFANA = ROOT / "grafana"
needs_sdk = pytest.mark.skipif(
    importlib.util.find_spec("grafana_foundation_sdk") is None,
    reason="grafana-foundation-sdk (the dashboard generator) needs Python 3.11+",
)
PROVISIONING = GRAFANA / "provisioning"


@pytest.fixture
def generator() -> Iterator[Any]:
    """``grafana/dashboards.py`` as a module (its package lives beside it)."""
    sys.path.insert(0, str(GRAFANA))
    try:
        spec = importlib.util.spec_from_file_location(
            "dashboards", GRAFANA / "dashboards.py"
        )
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(GRAFANA))


@needs_sdk
def test_committed_json_is_what_the_code_generates() -> None:
    result = subprocess.run(
        [sys.executable, str(GRAFANA / "dashboards.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@needs_sdk
def test_check_mode_catches_a_hand_edit(generator: Any, tmp_path: Path) -> None:
    target = tmp_path / "chanx-overview.json"
    generator.OUTPUT = target
    assert generator.main([]) == 0
    assert generator.main(["--check"]) == 0
    target.write_text(target.read_text().replace("chanx overview", "edited"))
    assert generator.main(["--check"]) == 1


def test_dashboard_has_stable_identity_and_unique_panel_ids() -> None:
    board = load_dashboard()
    assert board["uid"] == "chanx-overview"
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    assert "null" not in {
        str(panel.get("options")).lower() for panel in board["panels"]
    }
    rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
    assert rows == [
        "Overview",
        "Connections",
        "Messages",
        "Groups and events",
        "Per pod",
        "Traces (Tempo)",
    ]


def test_provisioned_datasources_match_the_dashboard_variables() -> None:
    config = yaml.safe_load((PROVISIONING / "datasources" / "chanx.yaml").read_text())
    assert config["apiVersion"] == 1
    provided = {source["type"] for source in config["datasources"]}
    wanted = {
        variable["query"]
        for variable in load_dashboard()["templating"]["list"]
        if variable["type"] == "datasource"
    }
    assert wanted == provided == {"prometheus", "tempo"}


def test_dashboard_provider_loads_files_from_one_folder() -> None:
    config = yaml.safe_load((PROVISIONING / "dashboards" / "chanx.yaml").read_text())
    assert config["apiVersion"] == 1
    [provider] = config["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"].startswith("/")
    assert DASHBOARD.parent.name == "dashboards"
