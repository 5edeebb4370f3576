"""Progress bars for long loops, and the one switch that turns them off.

Every long loop of ``companion`` (training, DQN, downloads) shows a plain-text ``tqdm`` bar: it reads
the same in a terminal, a notebook, Colab and a log file, with no widget library needed. Its
frames are not content, so a built page should not keep them: set ``COMPANION_PROGRESS=0`` in the
environment (the course's ``Makefile`` does, for the book build and the notebook tests) and every
bar is off, whatever a function's ``progress`` argument says.
"""

from __future__ import annotations

import os

__all__ = ["progress_bar", "progress_enabled"]

_OFF = {"0", "false", "no", "off"}
_ON = {"", "1", "true", "yes", "on"}


def progress_enabled(requested: bool = True) -> bool:
    """``requested``, unless the environment variable ``COMPANION_PROGRESS`` turns bars off."""
    if not isinstance(requested, bool):
        raise TypeError(f"progress must be True or False, got {requested!r}")
    setting = os.environ.get("COMPANION_PROGRESS", "").strip().lower()
    if setting not in _OFF | _ON:
        raise ValueError(
            f"Invalid COMPANION_PROGRESS={os.environ['COMPANION_PROGRESS']!r} (use 0/off to hide progress bars, 1/on to show them)"
        )
    return requested and setting not in _OFF


def progress_bar(total=None, desc: str = "", *, enabled: bool = True, unit: str = "step", **options):
    """A text ``tqdm`` bar that redraws at most every 2 s and disappears when done (``leave=False``)."""
    from tqdm import tqdm

    options.setdefault("mininterval", 2.0)
    options.setdefault("leave", False)
    return tqdm(total=total, desc=desc, unit=unit, disable=not progress_enabled(enabled), **options)
