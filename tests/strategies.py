"""Hypothesis strategies shared by the codec and group-payload tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

#: JSON scalars, integers past 64 bits and finite floats included.
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)


def json_values(max_size: int = 4, max_leaves: int = 20) -> st.SearchStrategy[Any]:
    """Nested JSON values: lists and objects (``max_size`` items) of scalars."""
    return st.recursive(
        json_scalars,
        lambda inner: (
            st.lists(inner, max_size=max_size)
            | st.dictionaries(st.text(max_size=8), inner, max_size=max_size)
        ),
        max_leaves=max_leaves,
    )
