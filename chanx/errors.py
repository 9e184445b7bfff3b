"""Client-facing error details: what an ``error`` frame's payload lists.

They carry the pydantic error ``type``, ``loc`` and ``msg`` and never the
offending input, so error frames cannot echo attacker-controlled data back.
"""

from __future__ import annotations

from typing import TypedDict

from pydantic import ValidationError

__all__ = ["ErrorDetail", "FrameError", "detail", "from_validation_error"]


class ErrorDetail(TypedDict):
    """One entry of an error frame's payload."""

    type: str
    loc: list[str | int]
    msg: str


class FrameError(Exception):
    """A frame that cannot be turned into a message; ``errors`` go to the client.

    Attributes:
        kind: ``"decode"`` (not a JSON object) or ``"validation"`` (bad fields).
        errors: The details sent in the error frame.
    """

    def __init__(self, kind: str, errors: list[ErrorDetail]) -> None:
        super().__init__(kind, errors)
        self.kind = kind
        self.errors = errors


def detail(type_: str, msg: str, loc: list[str | int] | None = None) -> ErrorDetail:
    """Build one error detail."""
    return {"type": type_, "loc": loc or [], "msg": msg}


def from_validation_error(exc: ValidationError) -> list[ErrorDetail]:
    """Turn a pydantic error into details, leaving out input, context and URLs."""
    return [
        detail(err["type"], err["msg"], list(err["loc"]))
        for err in exc.errors(
            include_url=False, include_context=False, include_input=False
        )
    ]
