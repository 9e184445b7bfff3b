"""Benchmarks: ratios measured side by side in one run (see README)."""


def token_key(index: int) -> str:
    """The DRF token of the live benchmark's user ``bench<index>`` (40 characters)."""
    return f"{index:040d}"
