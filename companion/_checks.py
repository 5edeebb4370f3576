"""Argument checks shared by companion's public functions.

They raise the way ``torch.optim`` does: a ``ValueError`` (or ``TypeError``)
whose message names the argument and the value it got. Nothing is clamped.
"""

from __future__ import annotations

import math
import numbers

__all__ = [
    "check_choice",
    "check_in_range",
    "check_learning_rate",
    "check_non_negative",
    "check_non_negative_int",
    "check_positive",
    "check_positive_int",
]


def _as_real(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}: {value!r}")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"Invalid {name}: nan")
    return value


def check_non_negative(name: str, value) -> float:
    """Return ``value`` as a float, or raise if it is negative, NaN or not a number."""
    real = _as_real(name, value)
    if real < 0.0:
        raise ValueError(f"Invalid {name}: {value} (must be >= 0)")
    return real


def check_positive(name: str, value) -> float:
    """Return ``value`` as a float, or raise unless it is > 0."""
    real = _as_real(name, value)
    if real <= 0.0:
        raise ValueError(f"Invalid {name}: {value} (must be > 0)")
    return real


def check_positive_int(name: str, value) -> int:
    """Return ``value`` as an int, or raise unless it is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}: {value!r}")
    if value < 1:
        raise ValueError(f"Invalid {name}: {value} (must be >= 1)")
    return int(value)


def check_non_negative_int(name: str, value) -> int:
    """Return ``value`` as an int, or raise unless it is an integer >= 0 (a step, a count that may be 0)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}: {value!r}")
    if value < 0:
        raise ValueError(f"Invalid {name}: {value} (must be >= 0)")
    return int(value)


def check_in_range(name: str, value, low: float, high: float, *, high_inclusive: bool = False) -> float:
    """Return ``value`` as a float, or raise unless ``low <= value < high`` (``<= high`` if inclusive)."""
    real = _as_real(name, value)
    inside = low <= real <= high if high_inclusive else low <= real < high
    if not inside:
        bracket = "]" if high_inclusive else ")"
        raise ValueError(f"Invalid {name}: {value} (must be in [{low}, {high}{bracket})")
    return real


def check_learning_rate(value, name: str = "learning_rate"):
    """A learning rate is a number >= 0 or a schedule: a callable of the step count."""
    if callable(value):
        return value
    rate = check_non_negative(name, value)
    if math.isinf(rate):
        raise ValueError(f"Invalid {name}: {value} (must be finite)")
    return rate


def check_choice(name: str, value, choices) -> str:
    """Raise unless ``value`` is one of ``choices`` (strings)."""
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"Unknown {name}: {value!r} (expected one of {options})")
    return value
