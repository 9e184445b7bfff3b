"""Command-line options of the locustfile (``--hosts``, ``--tokens-file``, SLO gates...)."""

from __future__ import annotations

from argparse import Namespace
from typing import Any, cast

from locust.argument_parser import LocustArgumentParser
from locust.env import Environment

from loadtests.gates import Thresholds

__all__ = ["add_options", "options_of", "threshold_args"]


def add_options(parser: LocustArgumentParser) -> None:
    """Add the load test's options to locust's parser (``init_command_line_parser``)."""
    group = parser.add_argument_group("chanx load test")
    group.add_argument(
        "--hosts",
        default="",
        help="Comma-separated ws:// base URLs; users are spread round-robin "
        "(default: --host).",
    )
    group.add_argument(
        "--tokens-file", default="", help="JSON from `manage.py loadtest_users`."
    )
    group.add_argument("--room-size", type=int, default=10, help="ChatUsers per room.")
    group.add_argument(
        "--reply-timeout", type=float, default=10.0, help="Seconds to wait for answers."
    )
    group.add_argument(
        "--drain-seconds",
        type=float,
        default=3.0,
        help="On stop, seconds to wait for in-flight messages before counting losses.",
    )
    group.add_argument(
        "--settle-seconds",
        type=float,
        default=1.0,
        help="On stop, keep every connection open at least this long after the "
        "last sends, so users do not disconnect while messages are in flight "
        "(0: close as soon as a user's own messages arrived).",
    )
    group.add_argument(
        "--broadcast-interval",
        type=float,
        default=0.5,
        help="Seconds between broadcasts.",
    )
    group.add_argument(
        "--announce-interval", type=float, default=2.0, help="Seconds between POSTs."
    )
    _add_gate_options(group)


def _add_gate_options(group: Any) -> None:
    group.add_argument("--slo-file", default=None, help="JSON object of thresholds.")
    defaults = Thresholds()
    for name, kind in (
        ("max_error_rate", float),
        ("max_lost", int),
        ("max_duplicates", int),
        ("max_p99_ms", float),
    ):
        group.add_argument(
            f"--{name.replace('_', '-')}",
            type=kind,
            default=None,
            help=f"SLO gate (default {getattr(defaults, name)}).",
        )
    group.add_argument(
        "--summary-file", default="", help="Write the run's summary JSON here."
    )


def options_of(environment: Environment) -> Namespace:
    """The parsed command line, with the options above."""
    assert environment.parsed_options is not None, "run locust from the command line"
    return cast(Namespace, environment.parsed_options)


def threshold_args(environment: Environment) -> dict[str, Any]:
    """Keyword arguments of :func:`loadtests.gates.load_thresholds` from the options."""
    options = options_of(environment)
    names = ("max_error_rate", "max_lost", "max_duplicates", "max_p99_ms")
    return {
        "path": options.slo_file,
        "overrides": {name: getattr(options, name) for name in names},
    }
