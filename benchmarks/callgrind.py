"""Instructions a live server executes, counted by valgrind's callgrind.

Throughput and CPU time on a shared two-core machine move by several
percent from run to run; the instructions a server executes for the same
work barely move (a change of a few thousand instructions per frame shows).
They do not see caches or the kernel (a system call counts as one
instruction), so they complement the timed benchmarks instead of replacing
them.

:func:`wrapper` is the command prefix that runs a
:class:`~benchmarks.live_servers.BenchServer` under callgrind (all threads
counted together, collection on from the start). :class:`Counter` zeroes
the counts before a measured run and reads them after it, with
``callgrind_control`` (both from Debian's ``valgrind`` package).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

__all__ = ["Counter", "available", "wrapper"]

_SUMMARY = re.compile(r"^summary:\s+(\d+)", re.MULTILINE)
_CONTROL_TIMEOUT = 120.0


def available() -> str | None:
    """None when valgrind and callgrind_control are installed, else what is missing."""
    missing = [
        tool for tool in ("valgrind", "callgrind_control") if not shutil.which(tool)
    ]
    if missing:
        return ", ".join(missing) + " not found (Debian package: valgrind)"
    return None


def wrapper(out_file: Path) -> list[str]:
    """The command prefix running a program under callgrind, dumping to ``out_file``."""
    return [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out_file}",
        # Each dump only needs the total: no per-instruction or jump data.
        "--dump-instr=no",
        "--dump-line=no",
        "--compress-strings=no",
    ]


class Counter:
    """Reads the instructions a callgrind-run process executed between two points.

    Args:
        pid: The process under callgrind.
        out_file: The ``--callgrind-out-file`` it was started with; each
            dump is written next to it with a numbered suffix.
    """

    def __init__(self, pid: int, out_file: Path) -> None:
        self.pid = pid
        self.out_file = out_file
        self._dumps = 0

    def zero(self) -> None:
        """Start counting from zero."""
        self._control("--zero")

    def read(self) -> int:
        """Instructions executed since :meth:`zero` (all threads).

        Raises:
            RuntimeError: callgrind wrote no dump, or one without a summary.
        """
        self._control("--dump")
        self._dumps += 1
        dump = Path(f"{self.out_file}.{self._dumps}")
        if not dump.exists():
            raise RuntimeError(f"callgrind wrote no {dump}")
        found = _SUMMARY.search(dump.read_text(errors="replace"))
        if found is None:
            raise RuntimeError(f"no summary line in {dump}")
        return int(found[1])

    def _control(self, action: str) -> None:
        # callgrind_control returns once the process has acted on the request.
        subprocess.run(
            ["callgrind_control", action, str(self.pid)],
            check=True,
            capture_output=True,
            timeout=_CONTROL_TIMEOUT,
        )
