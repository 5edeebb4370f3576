"""Put a value computed in a notebook cell into the chapter's prose (myst-nb's ``glue``).

A chapter writes ``glue("sa_median", f"{median:.2f}")`` in the cell that measured the value and
``{glue:text}`sa_median``` in its markdown; the book shows the number the run produced. The value is
not displayed in the cell (the cell prints what a reader should see). Where myst-nb is not installed
(Colab), the same record is written with IPython's display machinery, so a notebook run there keeps its
values for a later book build; outside IPython the call does nothing.
"""

from __future__ import annotations

__all__ = ["glue"]

_PREFIX = "application/papermill.record/"  # myst-nb's (and scrapbook's) mime type prefix for glued values


def glue(name: str, value) -> None:
    """Record ``value`` under ``name`` for ``{glue:text}`name``` in the chapter (not shown in the cell)."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"Invalid name: {name!r} (a glue key is a Python identifier, e.g. 'sa_median')")
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        myst_glue = None
    if myst_glue is not None:
        myst_glue(name, value, display=False)
        return
    try:
        from IPython import get_ipython
        from IPython.core.formatters import format_display_data
        from IPython.display import display
    except ImportError:
        return
    if get_ipython() is None:
        return
    bundle, metadata = format_display_data(value)
    metadata["scrapbook"] = {"name": name, "mime_prefix": _PREFIX}
    display({_PREFIX + key: data for key, data in bundle.items()}, raw=True, metadata=metadata)
