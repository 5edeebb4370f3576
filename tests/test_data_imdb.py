"""Tests of companion.data.imdb: building the CSV from an aclImdb archive, the cache, the loader."""

import csv
import gzip
import io
import tarfile

import numpy as np
import pytest

from companion.data import data_dir, file_hash, imdb
from companion.data.imdb import IMDB_CSV, build_imdb_csv, imdb_csv_path, load_imdb

REVIEWS = {
    # (split, polarity, id, rating): text
    ("train", "neg", 10, 2): "Dull, <br />dull, dull.",
    ("train", "neg", 2, 1): 'The worst film, with "quotes", commas\nand a new line.',
    ("train", "pos", 0, 9): "Bromwell High is a cartoon comedy.",
    ("train", "pos", 7, 10): "Wonderful. Caf\u00e9 scenes!",
    ("test", "neg", 3, 4): "Not good.",
    ("test", "neg", 1, 3): "Boring.",
    ("test", "pos", 5, 8): "Not bad at all.",
    ("test", "pos", 4, 7): "Good.",
}


def _make_tar(path, reviews=REVIEWS, extra=True):
    """A tiny archive with the aclImdb layout (plus files the builder must skip)."""
    with tarfile.open(path, "w:gz") as tar:
        def add(name, text):
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        for (split, polarity, file_id, rating), text in reviews.items():
            add(f"aclImdb/{split}/{polarity}/{file_id}_{rating}.txt", text)
        if extra:
            add("aclImdb/train/unsup/0_0.txt", "An unlabelled review.")
            add("aclImdb/README", "readme")
            add("aclImdb/train/urls_pos.txt", "http://example.org")
    return path


def _read_csv(path):
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def test_build_csv_layout_order_and_text(tmp_path):
    out = build_imdb_csv(_make_tar(tmp_path / "a.tar.gz"), tmp_path / "out" / "imdb.csv.gz", expected_per_split=4)
    rows = _read_csv(out)
    assert rows[0] == ["review", "sentiment", "split", "id", "rating"]
    body = rows[1:]
    assert [(r[2], r[1], int(r[3])) for r in body] == [
        ("train", "negative", 2), ("train", "negative", 10), ("train", "positive", 0), ("train", "positive", 7),
        ("test", "negative", 1), ("test", "negative", 3), ("test", "positive", 4), ("test", "positive", 5),
    ]
    assert body[0][0] == REVIEWS[("train", "neg", 2, 1)]  # quotes, commas and new lines survive
    assert body[3][0] == "Wonderful. Caf\u00e9 scenes!" and body[3][4] == "10"
    assert not any("unlabelled" in r[0] for r in body)
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".part")]
    # gzip written with mtime 0: rebuilding gives the same bytes
    again = build_imdb_csv(tmp_path / "a.tar.gz", tmp_path / "again.csv.gz", expected_per_split=4)
    assert file_hash(again) == file_hash(out)


def test_build_csv_checks_counts_and_balance(tmp_path):
    tar_path = _make_tar(tmp_path / "a.tar.gz")
    with pytest.raises(ValueError, match="25000"):
        build_imdb_csv(tar_path, tmp_path / "x.csv.gz")  # the default expects the full data set
    unbalanced = dict(REVIEWS)
    del unbalanced[("test", "pos", 4, 7)]
    with pytest.raises(ValueError, match="unbalanced"):
        build_imdb_csv(_make_tar(tmp_path / "b.tar.gz", unbalanced), tmp_path / "y.csv.gz", expected_per_split=None)
    with pytest.raises(ValueError, match="expected_per_split"):
        build_imdb_csv(tar_path, tmp_path / "z.csv.gz", expected_per_split=3)
    assert not list(tmp_path.glob("*.csv.gz")) and not list(tmp_path.glob(".*.part"))


def _archive_in_cache(tmp_path, monkeypatch):
    """A small aclImdb archive placed in an empty writable cache, the loader's checksums set to match it."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("COMPANION_CACHE_DIR", str(cache))
    monkeypatch.delenv("COMPANION_DATA_DIR", raising=False)
    tar_path = cache / "imdb" / "aclImdb_v1.tar.gz"
    tar_path.parent.mkdir(parents=True, exist_ok=True)
    _make_tar(tar_path)
    monkeypatch.setattr(imdb, "IMDB_TAR_MD5", file_hash(tar_path, "md5"))
    monkeypatch.setattr(imdb, "IMDB_TAR_SHA256", file_hash(tar_path))
    monkeypatch.setattr(imdb, "_SPLIT_SIZE", 4)
    return cache, tar_path


def test_download_route_builds_the_csv_in_the_cache(tmp_path, monkeypatch):
    """Offline: the 'downloaded' archive is placed in the cache; fetch verifies it; the CSV is built once."""
    cache, _ = _archive_in_cache(tmp_path, monkeypatch)
    with pytest.raises(FileNotFoundError, match="download=False"):
        imdb_csv_path(download=False)
    built = imdb_csv_path(progress=False)
    assert built == cache / "imdb" / "aclImdb_v1_labeled.csv.gz"
    texts, labels = load_imdb("test")
    assert texts == ["Boring.", "Not good.", "Good.", "Not bad at all."]
    assert labels.tolist() == [0, 0, 1, 1] and labels.dtype == np.int64
    sub_texts, sub_labels = load_imdb("train", limit=2)
    assert len(sub_texts) == 2 and sorted(sub_labels.tolist()) == [0, 1]


def test_cached_csv_is_reused_without_the_archive(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPANION_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("COMPANION_DATA_DIR", raising=False)
    monkeypatch.setattr(imdb, "IMDB_URL", "http://127.0.0.1:9/aclImdb_v1.tar.gz")  # any download would fail
    build_imdb_csv(_make_tar(tmp_path / "a.tar.gz"), tmp_path / IMDB_CSV, expected_per_split=4)
    assert imdb_csv_path(download=False) == tmp_path / IMDB_CSV
    assert load_imdb("train")[1].tolist() == [0, 0, 1, 1]


def test_offline_without_data_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPANION_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("COMPANION_DATA_DIR", raising=False)
    monkeypatch.setattr(imdb, "IMDB_URL", "http://127.0.0.1:9/aclImdb_v1.tar.gz")
    with pytest.raises(FileNotFoundError, match="aclImdb_v1.tar.gz"):
        imdb_csv_path(progress=False)
    assert not list(tmp_path.rglob("*.part"))


@pytest.mark.parametrize("kwargs, match", [({"split": "val"}, "split"), ({"limit": 0}, "limit"), ({"limit": 2.5}, "limit")])
def test_load_imdb_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_imdb(**kwargs)


def test_seeded_data_set():
    root = data_dir()
    if root is None or not (root / IMDB_CSV).is_file():
        pytest.skip("the seeded IMDB CSV is not available (COMPANION_DATA_DIR unset or without it)")
    texts, labels = load_imdb("test")
    assert len(texts) == 25_000 and labels.sum() == 12_500
    assert labels[:12_500].sum() == 0  # file order: negative reviews first
    train_texts, train_labels = load_imdb("train", limit=1000, seed=1)
    assert len(train_texts) == 1000 and train_labels.sum() == 500
    assert all(isinstance(t, str) and t for t in train_texts)


def test_a_damaged_cached_csv_is_removed_and_rebuilt_never_used(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("COMPANION_CACHE_DIR", str(cache))
    monkeypatch.delenv("COMPANION_DATA_DIR", raising=False)
    target = cache / IMDB_CSV
    build_imdb_csv(_make_tar(tmp_path / "a.tar.gz"), target, expected_per_split=4)
    recorded = target.with_name(target.name + ".sha256")
    assert recorded.read_text().strip() == file_hash(target)
    good = target.read_bytes()
    target.write_bytes(good[: len(good) // 2])  # a truncated copy
    with pytest.raises(FileNotFoundError, match="did not match its recorded checksum and was removed"):
        imdb_csv_path(download=False)
    assert not target.exists() and not recorded.exists()
    # A valid gzip CSV that is not the course's (no checksum recorded beside it) is not used either.
    target.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(target, "wt", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([("review", "sentiment", "split", "id", "rating"), ("ok", "positive", "train", 0, 9)])
    with pytest.raises(FileNotFoundError, match="was removed"):
        imdb_csv_path(download=False)
    # With the archive in the cache, the next call rebuilds the CSV from it.
    _archive_in_cache(tmp_path, monkeypatch)
    target.write_bytes(b"not gzip at all")
    assert imdb_csv_path(progress=False) == target and target.read_bytes() == good
    assert load_imdb("test")[1].tolist() == [0, 0, 1, 1]


def test_archive_must_match_its_sha256_as_well_as_its_md5(tmp_path, monkeypatch):
    """An archive whose md5 matches but whose sha256 does not is not used: it is fetched again (offline
    here, so the error names the mismatch), and no CSV is built from it."""
    cache, _ = _archive_in_cache(tmp_path, monkeypatch)
    monkeypatch.setattr(imdb, "IMDB_TAR_SHA256", "0" * 64)
    monkeypatch.setattr(imdb, "IMDB_URL", "http://127.0.0.1:9/aclImdb_v1.tar.gz")  # nothing listens there
    with pytest.raises(FileNotFoundError, match=r"(?s)Checksum mismatch for the cached copy.*sha256"):
        imdb_csv_path(progress=False)
    assert not (cache / "imdb" / "aclImdb_v1_labeled.csv.gz").exists()
