"""Argument checks shared by the package, so every error about an integer reads the same.

An error speaks to a student: what was wrong, what was expected, and (``hint``) what to do.
"""

from __future__ import annotations

import numbers

__all__ = ["check_int"]


def check_int(name: str, value, minimum: int = 0, *, unit: str = "", allow_none: bool = False,
              hint: str = "") -> int | None:
    """``value`` as a Python ``int`` if it is an integer ``>= minimum``, else ``ValueError``.

    Python and numpy integers are accepted; ``True``/``False``, floats (even ``3.0``) and
    strings are not. ``allow_none``: ``None`` is accepted and returned as it is.

    The message names the argument and the value, e.g. ``size must be an integer >= 8 pixels,
    got 4`` or ``seed must be a non-negative integer, got -1``.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(_message(name, value, minimum, unit, allow_none, hint))
    return int(value)


def _message(name, value, minimum, unit, allow_none, hint) -> str:
    if minimum == 0 and not unit:
        expected = "a non-negative integer"
    elif minimum == 1 and not unit and not allow_none:
        expected = "a positive integer"
    else:
        expected = f"an integer >= {minimum}" + (f" {unit}" if unit else "")
    if allow_none:
        expected = f"None or {expected}"
    text = f"{name} must be {expected}, got {value!r}"
    return f"{text}. {hint}" if hint else text
