"""Hide secrets in log events: by key name, and inside text.

Used by :mod:`chanx.telemetry.logs` as a structlog processor; usable on its
own in any structlog chain.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from structlog.typing import EventDict, WrappedLogger

__all__ = ["REDACTED", "EventProcessor", "redact"]

#: What a hidden value is replaced with.
REDACTED = "[redacted]"

#: A processor returning an event dict (so more processors can follow).
EventProcessor = Callable[[WrappedLogger, str, EventDict], EventDict]

# Keys the stdlib bridge puts into the event dict, and fields chanx and the
# chain itself fill with bounded values (names, ids, templates): not scanned,
# since every frame logs them.
_META_KEYS = frozenset(
    {
        "_record",
        "_from_structlog",
        "level",
        "logger",
        "timestamp",
        "trace_id",
        "span_id",
        "connection_id",
        "consumer",
        "route",
        "action",
        "handler",
    }
)
# Containers nested deeper than this are replaced (guards against cycles).
_MAX_DEPTH = 12
# Authorization schemes whose credential is hidden in text (see _CREDENTIAL).
_SCHEMES = ("bearer", "token", "basic", "jwt")
# Values with nothing inside to redact (exact types: a subclass may not be).
_SCALARS = frozenset({int, float, bool, type(None)})
# Clean texts remembered per redactor: at most this many, this long each.
_CACHED_TEXTS = 1024
_CACHED_TEXT_LENGTH = 80
# "name=value" (query strings, cookies) and "name: value" (headers, dict
# reprs); the value is matched only after a secret name, which keeps the scan
# linear. It may start with a scheme ("Authorization: Bearer xyz").
_PAIR = r"(?<![\w.\-])(?P<name>[\w.\-]+)[\"']?\s*[:=]\s*"
_VALUE = (
    r"\"[^\"]{0,4096}\"|'[^']{0,4096}'"
    r"|[\"']?(?:(?:bearer|token|basic|jwt)\s+)?[^\s&;,#\"']+"
)
# An authorization scheme and its credential. Bearer always; the others only
# when the credential looks like one (a digit or "=" padding), so prose such
# as "token refresh" or "basic setup" is left alone.
_CREDENTIAL = (
    r"(?P<scheme>\bbearer\s+|\b(?:token|basic|jwt)\s+(?=[\w\-.~+/]*[0-9=]))"
    r"[\w\-.~+/]+=*"
)


class _Words:
    """Finds any of some lower-case words in a text, in any case."""

    __slots__ = ("_any_case", "_ascii")

    def __init__(self, words: Iterable[str]) -> None:
        words = list(words)
        # "(?!)" never matches, for an empty word list.
        alternatives = "|".join(re.escape(w) for w in words) or "(?!)"
        self._any_case = re.compile(alternatives, re.IGNORECASE)
        # ASCII text lower-cased, then searched case-sensitively: the same
        # matches, several times faster. Other text keeps the slow search:
        # Unicode case folding matches more ("\u017f" is an "s" to it).
        ascii_words = all(w.isascii() for w in words)
        self._ascii = re.compile(alternatives) if ascii_words else None

    def found_in(self, text: str) -> bool:
        """Whether ``text`` contains one of the words, ignoring case."""
        if self._ascii is not None and text.isascii():
            return self._ascii.search(text.lower()) is not None
        return self._any_case.search(text) is not None


class _Redactor:
    """Copies an event dict with secret values replaced by :data:`REDACTED`."""

    __slots__ = (
        "_clean_texts",
        "_credential",
        "_hint",
        "_key",
        "_pair",
        "_secret_keys",
        "_value",
    )

    def __init__(self, keys: Iterable[str]) -> None:
        words = sorted({k.strip().lower() for k in keys if k.strip()})
        self._key = _Words(words)
        self._pair = re.compile(_PAIR)
        self._value = re.compile(_VALUE, re.IGNORECASE)
        self._credential = re.compile(_CREDENTIAL, re.IGNORECASE)
        # Most values hold no secret word at all: one search rules them out
        # before the pair-by-pair scan (a log line is on every frame's path).
        self._hint = _Words([*words, *_SCHEMES])
        # Log keys are a small set (field names): remember the verdict.
        self._secret_keys: dict[str, bool] = {}
        # Short texts seen without any secret word (event names, actions):
        # most lines repeat them, and a lookup is cheaper than a search.
        self._clean_texts: dict[str, None] = {}

    def __call__(
        self, logger: WrappedLogger, method_name: str, event_dict: EventDict
    ) -> EventDict:
        # Only the values that change are collected: most lines have none,
        # and then the input itself is returned (it is never modified). The
        # common cases are inlined: this loop runs for every line.
        changed: dict[Any, Any] | None = None
        secret_keys, clean_texts = self._secret_keys, self._clean_texts
        for key, value in event_dict.items():
            if key in _META_KEYS:
                continue
            secret = secret_keys.get(key)
            if secret is None:
                secret = self._secret_key(key)
            if secret:
                new: Any = REDACTED
            elif value.__class__ is str:
                if value in clean_texts:
                    continue
                new = self._text(value)
            elif value.__class__ in _SCALARS:
                continue
            else:
                new = self._clean(value, 0)
            if new is not value:
                if changed is None:
                    changed = {}
                changed[key] = new
        if changed is None:
            return event_dict
        out = dict(event_dict)
        out.update(changed)
        return out

    def _text(self, text: str) -> str:
        if text in self._clean_texts:
            return text
        scrubbed = self._scrub(text)
        if scrubbed != text:
            return scrubbed
        if len(text) <= _CACHED_TEXT_LENGTH:
            if len(self._clean_texts) >= _CACHED_TEXTS:
                self._clean_texts.clear()  # bounded; the hot texts come back
            self._clean_texts[text] = None
        return text

    def _secret_key(self, key: str) -> bool:
        secret = self._secret(key)
        if len(self._secret_keys) < 4096:
            self._secret_keys[key] = secret
        return secret

    def _secret(self, key: Any) -> bool:
        if isinstance(key, bytes):
            key = key.decode("latin-1")
        return isinstance(key, str) and self._key.found_in(key)

    def _clean(self, value: Any, depth: int) -> Any:
        if isinstance(value, str):
            return self._scrub(value)
        if isinstance(value, (bytes, bytearray)):
            return self._scrub(bytes(value).decode("latin-1")).encode("latin-1")
        if not isinstance(value, (Mapping, list, tuple)):
            return value
        if depth >= _MAX_DEPTH:
            return "[too deep]"
        if isinstance(value, Mapping):
            return {
                k: REDACTED if self._secret(k) else self._clean(v, depth + 1)
                for k, v in value.items()
            }
        return self._clean_sequence(value, depth)

    def _clean_sequence(self, value: Sequence[Any], depth: int) -> Any:
        # A ("authorization", b"Token ...") pair, as in ASGI headers.
        if len(value) == 2 and self._secret(value[0]):
            items = [value[0], REDACTED]
        else:
            items = [self._clean(item, depth + 1) for item in value]
        return tuple(items) if isinstance(value, tuple) else items

    def _scrub(self, text: str) -> str:
        if not self._hint.found_in(text):
            return text
        parts: list[str] = []
        copied = pos = 0
        # A harmless name's value is scanned on too ("next=/a?token=x").
        while (pair := self._pair.search(text, pos)) is not None:
            pos = pair.end()
            if not self._key.found_in(pair["name"]):
                continue
            value = self._value.match(text, pos)
            if value is None:
                continue
            parts += [text[copied:pos], _hidden(value[0])]
            copied = pos = value.end()
        parts.append(text[copied:])
        return self._credential.sub(rf"\g<scheme>{REDACTED}", "".join(parts))


def _hidden(value: str) -> str:
    # Keep the quotes around a quoted value, so the text still reads right.
    quote = value[0] if value[0] in "\"'" else ""
    closing = quote if len(value) > 1 and value.endswith(quote) else ""
    return f"{quote}{REDACTED}{closing}"


def redact(keys: Iterable[str]) -> EventProcessor:
    """A processor that returns the event dict with secrets hidden.

    A value becomes :data:`REDACTED` when its key contains one of ``keys``
    (case-insensitive: ``"token"`` matches ``access_token``), in nested dicts,
    lists and tuples too, as does the value of a ``(name, value)`` pair such
    as an ASGI header. In text, ``token=...``, ``Cookie: ...`` and the
    credential after ``Bearer``/``Token``/``Basic``/``JWT`` are hidden. The
    input is not modified; the regular expressions are compiled once, here.

    Args:
        keys: Key fragments naming secrets, e.g. ``["token", "password"]``.

    Example:
        >>> redact(["token"])(None, "info", {"path": "/ws/?token=abc&x=1"})
        {'path': '/ws/?token=[redacted]&x=1'}
    """
    return _Redactor(keys)
