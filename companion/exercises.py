"""What the exercises' checks share: a check of bad input that explains itself.

The chapters' graded cells import from here (``from companion.exercises import expect_error``); it needs
nothing but the standard library, so a student's notebook runs it wherever ``companion`` is installed.
"""

from __future__ import annotations

import re

__all__ = ["expect_error"]


def expect_error(call, error=ValueError, naming: str | None = None, *, when: str = "this call"):
    """The check the exercises use for bad input: ``call()`` must raise ``error`` (a class or a tuple of
    classes) whose message names ``naming`` as a word; otherwise an ``AssertionError`` whose message tells
    the student what happened (``when`` says what was called, e.g. ``"heavy_ball(1.5)"``). Returns the error.
    """
    expected = error if isinstance(error, tuple) else (error,)
    if not expected or not all(isinstance(e, type) and issubclass(e, BaseException) for e in expected):
        raise TypeError(f"error must be an exception class or a tuple of them, got {error!r}")
    if not callable(call):
        raise TypeError(f"call must be a function of no arguments (e.g. a lambda), got {type(call).__name__}")
    kinds = " or ".join(e.__name__ for e in expected)
    try:
        call()
    except expected as raised:
        if naming is not None and not re.search(rf"(?<![\w.]){re.escape(naming)}(?!\w)", str(raised)):
            raise AssertionError(f"{when} raised {type(raised).__name__} as it should, but its message must name "
                                 f"`{naming}`: {raised}") from None
        return raised
    except Exception as other:
        raise AssertionError(f"{when} should raise {kinds}, but raised {type(other).__name__}: {other}") from None
    raise AssertionError(f"{when} should raise {kinds}" + (f" naming `{naming}`" if naming else "") + ", but raised nothing")
