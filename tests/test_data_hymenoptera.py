"""Tests of companion.data.hymenoptera: extraction into the writable cache, counts, the loader."""

import os
import zipfile

import numpy as np
import pytest

from companion.data import cache_dir, data_dir, hymenoptera
from companion.data.hymenoptera import HYMENOPTERA_COUNTS, HYMENOPTERA_SHA256, hymenoptera_dir, load_hymenoptera


def _seeded_zip():
    root = data_dir()
    if root is None or not (root / "hymenoptera_data.zip").is_file():
        pytest.skip("the seeded hymenoptera_data.zip is not available (COMPANION_DATA_DIR unset or without it)")
    return root / "hymenoptera_data.zip"


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPANION_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_constants():
    assert sum(HYMENOPTERA_COUNTS.values()) == 398
    assert len(HYMENOPTERA_SHA256) == 64


def test_extracts_into_the_writable_cache_and_reuses_it(private_cache):
    _seeded_zip()
    folder = hymenoptera_dir(progress=False)
    assert folder == cache_dir() / "hymenoptera_data" and folder.parent == private_cache
    for (split, name), count in HYMENOPTERA_COUNTS.items():
        assert len(list((folder / split / name).iterdir())) == count
    assert not [p for p in private_cache.iterdir() if p.name.endswith(".part")]  # no temporary folder left
    stamp = os.stat(folder).st_mtime_ns
    assert hymenoptera_dir(progress=False) == folder and os.stat(folder).st_mtime_ns == stamp


def test_incomplete_folder_is_replaced(private_cache):
    _seeded_zip()
    broken = private_cache / "hymenoptera_data" / "train" / "ants"
    broken.mkdir(parents=True)
    (broken / "only.jpg").write_bytes(b"x")
    folder = hymenoptera_dir(progress=False)
    assert len(list((folder / "train" / "ants").iterdir())) == 124


def test_wrong_counts_are_refused(private_cache, tmp_path, monkeypatch):
    bad_zip = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad_zip, "w") as zf:
        zf.writestr("hymenoptera_data/train/ants/a.jpg", b"x")
    monkeypatch.setattr(hymenoptera, "fetch", lambda *args, **kwargs: bad_zip)
    with pytest.raises(ValueError, match="counts"):
        hymenoptera_dir(progress=False)
    assert not (private_cache / "hymenoptera_data").exists()


def test_load_hymenoptera_small(private_cache):
    _seeded_zip()
    images, labels, paths = load_hymenoptera("val", 32, progress=False)
    assert images.shape == (153, 32, 32, 3) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [70, 83]
    assert len(paths) == 153
    train_images, train_labels, train_paths = load_hymenoptera("train", 8, progress=False)
    assert np.bincount(train_labels).tolist() == [123, 121]  # the placeholder GIF is dropped
    assert all(p.name != "imageNotFound.gif" for p in train_paths)
    _, all_labels, _ = load_hymenoptera("train", 8, drop_placeholders=False, progress=False)
    assert np.bincount(all_labels).tolist() == [124, 121]


def test_load_hymenoptera_rejects_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        load_hymenoptera("test")
    with pytest.raises(ValueError, match="image_size"):
        load_hymenoptera("train", 0)
