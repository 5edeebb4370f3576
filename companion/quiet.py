"""Keep the C++ chatter of the frameworks off the page, and nothing else.

``import tensorflow`` (or ``import keras``, whose backend it is) prints, from C++ and before
TensorFlow's own logging is set up, lines such as::

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:1796185675.735246  9945 port.cc:153] oneDNN custom operations are on. ...
    E0000 00:00:1796185680.077399  9945 cuda_platform.cc:52] failed call to cuInit: ...

``TF_CPP_MIN_LOG_LEVEL`` does not reach them: they are written straight to the process's file
descriptor 2 before the variable is read, and the last one comes later, when TensorFlow first looks
for a GPU. In a notebook they land in a red box under the cell. :func:`quiet_tensorflow` sends file
descriptor 2 to a temporary file while TensorFlow starts and looks for its devices, then restores
it::

    with quiet_tensorflow():
        import keras
        import tensorflow as tf

:func:`quiet_stderr` does the same for any block (the PyTorch profiler's trace points, say). What was
silenced is kept (:func:`quiet_log`) and printed if the block raises. Python's own warnings in a
notebook, the frameworks' later messages at the levels ``TF_CPP_MIN_LOG_LEVEL`` lets through, and
every exception still reach the page.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile

__all__ = ["quiet_log", "quiet_stderr", "quiet_tensorflow"]

_LOG: list[str] = []


@contextlib.contextmanager
def quiet_stderr():
    """Send file descriptor 2 (what C/C++ code writes to stderr) to a temporary file inside the block."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved_fd = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
            sink.seek(0)
            text = sink.read().decode("utf-8", errors="replace")
            if text:
                _LOG.append(text)
                if failed:
                    print(text, file=sys.stderr, end="")


@contextlib.contextmanager
def quiet_tensorflow(min_log_level: int = 2):
    """:func:`quiet_stderr` while TensorFlow is imported inside the block and then finds its devices.

    ``min_log_level`` becomes ``TF_CPP_MIN_LOG_LEVEL`` unless that is already set (2: errors only,
    for what TensorFlow logs once started).
    """
    if isinstance(min_log_level, bool) or not isinstance(min_log_level, int) or not 0 <= min_log_level <= 3:
        raise ValueError(f"Invalid min_log_level: {min_log_level!r} (must be an integer from 0 to 3)")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", str(min_log_level))
    with quiet_stderr():
        yield
        if "tensorflow" in sys.modules:
            # TensorFlow probes for CUDA when its devices are first used, not at import: do it here.
            sys.modules["tensorflow"].config.list_physical_devices()


def quiet_log() -> str:
    """Everything :func:`quiet_stderr` and :func:`quiet_tensorflow` kept off the page so far in this process."""
    return "".join(_LOG)
