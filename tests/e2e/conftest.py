"""Attach the uvicorn logs to the report of a failed e2e test."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from tests.e2e.servers import UvicornServer


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        funcargs: dict[str, Any] = getattr(item, "funcargs", {})
        cluster = funcargs.get("cluster")
        for server in getattr(cluster, "servers", ()):
            if isinstance(server, UvicornServer):
                report.sections.append(
                    (f"uvicorn {server.name} ({server.log_path})", server.log_tail())
                )
    return report
