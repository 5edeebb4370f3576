"""The IMDB movie-review sentiment data set (Maas et al., 2011), from raw text.

50,000 labelled reviews: the official split of 25,000 training and 25,000 test reviews, each
half positive (rating 7-10) and half negative (rating 1-4). The course reads them from one CSV
(``imdb/aclImdb_v1_labeled.csv.gz``; columns ``review, sentiment, split, id, rating``; rows
ordered train/neg, train/pos, test/neg, test/pos, each by numeric id):

1. from ``$COMPANION_DATA_DIR`` or the writable cache, when a copy is there;
2. otherwise the canonical archive ``aclImdb_v1.tar.gz`` (84 MB) is downloaded with
   :func:`companion.data.fetch`, checksum-verified, and the CSV is built from it into the
   writable cache by :func:`build_imdb_csv` (atomic write, row counts and label balance checked).

Maas, A. L., Daly, R. E., Pham, P. T., Huang, D., Ng, A. Y. and Potts, C. (2011).
*Learning Word Vectors for Sentiment Analysis.* ACL 2011.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import tarfile
import tempfile
from pathlib import Path
from typing import Optional, Union

import numpy as np

from .download import cache_dir, data_dir, fetch, file_hash

__all__ = [
    "IMDB_CSV",
    "IMDB_CSV_SHA256",
    "IMDB_TAR",
    "IMDB_TAR_MD5",
    "IMDB_TAR_SHA256",
    "IMDB_URL",
    "build_imdb_csv",
    "imdb_csv_path",
    "load_imdb",
]

#: Where the labelled CSV lives inside a cache folder.
IMDB_CSV = "imdb/aclImdb_v1_labeled.csv.gz"
#: sha256 of the course's CSV (gzip written with mtime 0, so a rebuild is byte-identical).
IMDB_CSV_SHA256 = "b7444b61208f2b7bbe8b3837cfb900e00156308ae0743b75f7c4c70c71a1d221"
#: The canonical archive of Maas et al., its sha256 and its md5 (as published by torchtext, Julia's
#: MLDatasets and others); a download must match both.
IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
IMDB_TAR = "imdb/aclImdb_v1.tar.gz"
IMDB_TAR_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
IMDB_TAR_MD5 = "7c2ac02c03563afcf9b574c7e56c153a"

_COLUMNS = ("review", "sentiment", "split", "id", "rating")
_MEMBER = re.compile(r"^(?:\./)?aclImdb/(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")
_SPLIT_SIZE = 25_000

PathLike = Union[str, "os.PathLike[str]"]


def build_imdb_csv(
    tar_path: PathLike, out_path: PathLike, *, expected_per_split: Optional[int] = _SPLIT_SIZE
) -> Path:
    """Build the labelled CSV from an ``aclImdb`` tar.gz (layout ``aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt``).

    The unsupervised reviews (``train/unsup``) are skipped. The file is written to a temporary
    file beside ``out_path`` and moved into place only after the checks pass: each split holds
    ``expected_per_split`` reviews (``None`` skips the count, for small test archives), half of
    them positive. Raises ``ValueError`` naming what is wrong.
    """
    if expected_per_split is not None and (
        not isinstance(expected_per_split, int) or expected_per_split <= 0 or expected_per_split % 2
    ):
        raise ValueError(f"expected_per_split must be a positive even int or None, got {expected_per_split!r}")
    rows = []
    with tarfile.open(tar_path, "r:gz") as tar:
        for member in tar:
            match = _MEMBER.match(member.name)
            if not member.isfile() or match is None:
                continue
            split, polarity, file_id, rating = match.groups()
            text = tar.extractfile(member).read().decode("utf-8")
            rows.append((split, polarity, int(file_id), int(rating), text))
    order = {("train", "neg"): 0, ("train", "pos"): 1, ("test", "neg"): 2, ("test", "pos"): 3}
    rows.sort(key=lambda r: (order[(r[0], r[1])], r[2]))

    for split in ("train", "test"):
        pos = sum(1 for r in rows if r[0] == split and r[1] == "pos")
        neg = sum(1 for r in rows if r[0] == split and r[1] == "neg")
        if expected_per_split is not None and pos + neg != expected_per_split:
            raise ValueError(
                f"{tar_path}: the {split} split has {pos + neg} reviews, expected {expected_per_split}"
            )
        if pos != neg:
            raise ValueError(f"{tar_path}: the {split} split is unbalanced ({pos} positive, {neg} negative)")
        if pos == 0:
            raise ValueError(f"{tar_path}: no {split} reviews found under aclImdb/{split}/{{pos,neg}}/")

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".part", dir=out_path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
            with io.TextIOWrapper(gz, encoding="utf-8", newline="") as text_out:
                writer = csv.writer(text_out)
                writer.writerow(_COLUMNS)
                for split, polarity, file_id, rating, text in rows:
                    label = "positive" if polarity == "pos" else "negative"
                    writer.writerow((text, label, split, file_id, rating))
        os.chmod(tmp, 0o644)
        digest = file_hash(tmp)
        os.replace(tmp, out_path)
        _write_atomic(_checksum_path(out_path), digest + "\n")  # what later reads verify the CSV against
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out_path


def _checksum_path(csv_path: Path) -> Path:
    return csv_path.with_name(csv_path.name + ".sha256")


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(text)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _verified_cached_csv(target: Path) -> Optional[Path]:
    """``target`` if it matches the checksum recorded when it was built, else ``None`` after removing it
    (a truncated or foreign file must not stay in the cache, to fail again on every call)."""
    recorded = _checksum_path(target)
    expected = recorded.read_text(encoding="ascii").strip() if recorded.is_file() else IMDB_CSV_SHA256
    if file_hash(target) == expected:
        return target
    target.unlink(missing_ok=True)
    recorded.unlink(missing_ok=True)
    return None


def imdb_csv_path(*, download: bool = True, progress: bool = True) -> Path:
    """Return the path of the labelled CSV, building it from the canonical archive when needed.

    A seeded copy (``$COMPANION_DATA_DIR``) is checked against :data:`IMDB_CSV_SHA256`. A copy in
    the writable cache was written atomically by :func:`build_imdb_csv` after its checks, from an
    archive whose sha256 and md5 were verified, with the CSV's sha256 recorded beside it; it is verified against that
    record on every call, and a copy that does not match is removed and rebuilt from the archive.
    """
    seeded_root = data_dir()
    if seeded_root is not None and seeded_root.joinpath(*IMDB_CSV.split("/")).is_file():
        return fetch(IMDB_CSV, IMDB_URL, sha256=IMDB_CSV_SHA256, progress=progress)  # verifies, never downloads
    target = cache_dir().joinpath(*IMDB_CSV.split("/"))
    rebuilt = ""
    if target.is_file():
        if _verified_cached_csv(target) is not None:
            return target
        rebuilt = " (the cached copy did not match its recorded checksum and was removed)"
    if not download:
        raise FileNotFoundError(
            f"{IMDB_CSV} is not in $COMPANION_DATA_DIR nor in the cache {cache_dir()}, and download=False{rebuilt}"
        )
    tar_path = fetch(IMDB_TAR, IMDB_URL, sha256=IMDB_TAR_SHA256, md5=IMDB_TAR_MD5, progress=progress)
    return build_imdb_csv(tar_path, target, expected_per_split=_SPLIT_SIZE)


def load_imdb(split: str = "train", *, limit: Optional[int] = None, seed: int = 0):
    """Return ``(texts, labels)`` of one split: a list of raw review strings and an int64 array (1 = positive).

    ``split`` is ``"train"`` or ``"test"`` (the official 25,000/25,000 split). ``limit`` keeps a
    class-balanced random subset of that many reviews (drawn with ``seed``), for quick experiments;
    without it the reviews come in file order (all negative reviews first), so shuffle before
    training on mini-batches.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if limit is not None and (not isinstance(limit, (int, np.integer)) or limit <= 0):
        raise ValueError(f"limit must be a positive int or None, got {limit!r}")
    import pandas as pd

    frame = pd.read_csv(imdb_csv_path(), usecols=["review", "sentiment", "split"])
    frame = frame[frame["split"] == split]
    labels = frame["sentiment"].map({"negative": 0, "positive": 1})
    if labels.isna().any():
        raise ValueError("the IMDB CSV holds sentiment values other than 'positive'/'negative'")
    texts = frame["review"].tolist()
    labels = labels.to_numpy(dtype=np.int64)
    if limit is not None:
        limit = min(int(limit), len(texts))
        rng = np.random.default_rng(seed)
        pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
        n_pos = limit // 2
        keep = np.concatenate([rng.choice(pos, n_pos, replace=False), rng.choice(neg, limit - n_pos, replace=False)])
        keep = rng.permutation(keep)
        texts = [texts[i] for i in keep]
        labels = labels[keep]
    return texts, labels
