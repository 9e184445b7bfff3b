"""Read the Dockerfile and .dockerignore without a Docker engine.

Enough of the syntax for this repository's Dockerfile: instructions with
line continuations, JSON (exec-form) ``CMD``, and the instructions of the
final stage. Anything fancier fails loudly instead of being misread.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Dockerfile", "ignored"]


@dataclass
class Dockerfile:
    """The final stage of a Dockerfile, as far as the tests need it."""

    cmd: list[str] = field(default_factory=list)
    user: str = ""
    workdir: str = "/"
    expose: list[int] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    #: (sources, destination) of the COPY lines that read the build context.
    copies: list[tuple[list[str], str]] = field(default_factory=list)
    #: (sources, destination, WORKDIR at that point) of the final stage.
    final_copies: list[tuple[list[str], str, str]] = field(default_factory=list)

    @classmethod
    def parse(cls, path: Path) -> Dockerfile:
        """Parse ``path``.

        Raises:
            ValueError: An instruction this reader does not understand.
        """
        result = cls()
        for instruction, args in _instructions(path.read_text()):
            result._apply(instruction, args)
        return result

    def _apply(self, instruction: str, args: str) -> None:
        if instruction == "FROM":
            # A new stage: only the last one's settings end up in the image.
            self.user, self.workdir, self.expose = "", "/", []
            self.final_copies = []
        elif instruction == "CMD":
            parsed = json.loads(args)
            if not isinstance(parsed, list):
                raise ValueError("CMD must use the exec (JSON) form")
            self.cmd = [str(part) for part in parsed]
        elif instruction == "USER":
            self.user = args.strip()
        elif instruction == "WORKDIR":
            self.workdir = args.strip()
        elif instruction == "EXPOSE":
            self.expose += [int(port.split("/")[0]) for port in args.split()]
        elif instruction == "ENV":
            for pair in args.split():
                key, _, value = pair.partition("=")
                self.env[key] = value
        elif instruction == "COPY":
            parts = args.split()
            if parts[0].startswith("--from="):
                return
            if any(part.startswith("--") for part in parts):
                raise ValueError(f"COPY option not understood: {args}")
            self.copies.append((parts[:-1], parts[-1]))
            self.final_copies.append((parts[:-1], parts[-1], self.workdir))
        elif instruction not in {"RUN", "ARG", "LABEL"}:
            raise ValueError(f"instruction not understood: {instruction}")


def _instructions(text: str) -> list[tuple[str, str]]:
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    result = []
    for line in lines:
        instruction, _, args = line.partition(" ")
        result.append((instruction.upper(), args.strip()))
    return result


def ignored(path: str, dockerignore: Path) -> bool:
    """Whether ``.dockerignore`` keeps ``path`` (relative) out of the context.

    Handles plain patterns, ``**/`` prefixes and ``!`` exceptions; the last
    matching pattern wins, as in Docker.
    """
    result = False
    for raw in dockerignore.read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        candidates = [pattern]
        if pattern.startswith("**/"):
            candidates.append(pattern[3:])
        if any(_matches(path, candidate) for candidate in candidates):
            result = not negate
    return result


def _matches(path: str, pattern: str) -> bool:
    parts = path.strip("/").split("/")
    # A pattern matching a parent directory excludes everything below it.
    return any(
        fnmatch.fnmatchcase("/".join(parts[:depth]), pattern)
        for depth in range(1, len(parts) + 1)
    )
