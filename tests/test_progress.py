"""companion.progress: one switch (COMPANION_PROGRESS) turns every bar off; bad settings are named."""

import io

import pytest

from companion.progress import progress_bar, progress_enabled


@pytest.mark.parametrize("setting, requested, expected", [
    ("", True, True), ("1", True, True), ("on", True, True), ("", False, False),
    ("0", True, False), ("off", True, False), ("False", True, False),
])
def test_progress_enabled(monkeypatch, setting, requested, expected):
    monkeypatch.setenv("COMPANION_PROGRESS", setting)
    assert progress_enabled(requested) is expected


def test_bad_settings_are_refused(monkeypatch):
    monkeypatch.setenv("COMPANION_PROGRESS", "sometimes")
    with pytest.raises(ValueError, match="COMPANION_PROGRESS"):
        progress_enabled(True)
    monkeypatch.setenv("COMPANION_PROGRESS", "1")
    with pytest.raises(TypeError, match="progress"):
        progress_enabled(1)


@pytest.mark.parametrize("setting, drawn", [("1", True), ("0", False)])
def test_the_bar_draws_only_when_enabled(monkeypatch, setting, drawn):
    monkeypatch.setenv("COMPANION_PROGRESS", setting)
    out = io.StringIO()
    with progress_bar(10, "work", file=out, mininterval=0) as bar:
        bar.update(10)
    assert ("work" in out.getvalue()) is drawn
