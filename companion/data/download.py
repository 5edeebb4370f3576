"""Fetch a data file once, verify it, and keep it in a cache.

:func:`fetch` looks for a file in this order:

1. ``$COMPANION_DATA_DIR/<relative_path>``: a read-only, pre-seeded cache (for example a
   shared folder in a classroom or on a CI runner). The file is used in place.
2. ``$COMPANION_CACHE_DIR/<relative_path>``, or ``~/.cache/companion/<relative_path>`` when that
   variable is unset: the writable cache that downloads go to.
3. The URL: the file is downloaded into a temporary file next to its final place in the writable
   cache, its checksum is verified, and only then is it moved into place with :func:`os.replace`
   (atomic), so an interrupted or corrupted download never leaves a partial file behind.

Every copy found is checked against the ``sha256`` / ``md5`` given. This module uses the standard
library, and tqdm for the progress bar; it never imports a deep learning framework.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath
from typing import Optional, Union

__all__ = [
    "DATA_DIR_ENV",
    "CACHE_DIR_ENV",
    "data_dir",
    "cache_dir",
    "file_hash",
    "fetch",
]

#: Environment variable naming a read-only folder of pre-seeded data files.
DATA_DIR_ENV = "COMPANION_DATA_DIR"
#: Environment variable naming the writable download cache (default ``~/.cache/companion``).
CACHE_DIR_ENV = "COMPANION_CACHE_DIR"

_CHUNK = 1 << 20  # 1 MiB
_TIMEOUT = 60.0  # seconds without data before a download is abandoned

PathLike = Union[str, "os.PathLike[str]"]


def data_dir() -> Optional[Path]:
    """Return the read-only seeded cache ``$COMPANION_DATA_DIR``, or ``None`` when unset."""
    value = os.environ.get(DATA_DIR_ENV, "").strip()
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """Return the writable download cache: ``$COMPANION_CACHE_DIR`` or ``~/.cache/companion``."""
    value = os.environ.get(CACHE_DIR_ENV, "").strip()
    if value:
        return Path(value).expanduser()
    return Path.home() / ".cache" / "companion"


def file_hash(path: PathLike, algorithm: str = "sha256") -> str:
    """Return the hexadecimal ``algorithm`` digest (``"sha256"``, ``"md5"``, ...) of a file."""
    return _file_hashes(path, (algorithm,))[algorithm]


def _file_hashes(path: PathLike, algorithms) -> dict:
    """Return ``{algorithm: hex digest}`` for several algorithms, reading the file once."""
    for alg in algorithms:
        if not isinstance(alg, str) or alg.lower() not in hashlib.algorithms_available:
            raise ValueError(f"Unknown algorithm: {alg!r} (expected a hashlib name such as 'sha256' or 'md5')")
    digests = {alg: hashlib.new(alg) for alg in algorithms}
    if digests:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                for digest in digests.values():
                    digest.update(chunk)
    return {alg: digest.hexdigest() for alg, digest in digests.items()}


def _check_relative_path(relative_path: PathLike) -> PurePosixPath:
    if not isinstance(relative_path, (str, os.PathLike)):
        raise TypeError(
            f"relative_path must be a str or a path, got {type(relative_path).__name__}"
        )
    text = os.fspath(relative_path).replace("\\", "/")
    rel = PurePosixPath(text)
    if not text or text.endswith("/") or rel.is_absolute() or ".." in rel.parts or rel.name in ("", "."):
        raise ValueError(
            f"relative_path must be a relative file path inside the cache such as "
            f"'mnist/train-images-idx3-ubyte.gz', got {os.fspath(relative_path)!r}"
        )
    return rel


def _check_hex(name: str, value: Optional[str], length: int) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a hexadecimal string or None, got {type(value).__name__}")
    value = value.strip().lower()
    if len(value) != length or any(c not in "0123456789abcdef" for c in value):
        raise ValueError(f"{name} must be {length} hexadecimal digits, got {value!r}")
    return value


def _mismatches(path: Path, expected: dict) -> list:
    """Return ``[(algorithm, expected, actual), ...]`` for every checksum that differs."""
    actual = _file_hashes(path, expected)
    return [(alg, want, actual[alg]) for alg, want in expected.items() if actual[alg] != want]


def _mismatch_message(what: str, path: Path, mismatches: list) -> str:
    lines = [f"Checksum mismatch for {what} {path}:"]
    lines += [f"  {alg}: expected {want}, got {got}" for alg, want, got in mismatches]
    return "\n".join(lines)


def _download(url: str, tmp_path: Path, expected: dict, *, label: str, progress: bool) -> dict:
    """Stream ``url`` into ``tmp_path``; return the hex digests of what was written."""
    from ..progress import progress_bar

    digests = {alg: hashlib.new(alg) for alg in expected}
    request = urllib.request.Request(url, headers={"User-Agent": "companion-course-data"})
    with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
        length = response.headers.get("Content-Length") if response.headers else None
        total = int(length) if length and length.isdigit() else None
        with open(tmp_path, "wb") as out, progress_bar(
            total, f"Downloading {label}", enabled=progress, unit="B", unit_scale=True, unit_divisor=1024, mininterval=0.1
        ) as bar:
            received = 0
            while True:
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
                for digest in digests.values():
                    digest.update(chunk)
                bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
    if total is not None and received != total:
        # urllib returns a short read, not an error, when the server hangs up early: without this
        # check a file downloaded with no checksum to verify would be kept cut short.
        raise OSError(f"transfer cut short: received {received:,} of {total:,} bytes")
    return {alg: digest.hexdigest() for alg, digest in digests.items()}


def fetch(
    relative_path: PathLike,
    url: str,
    sha256: Optional[str] = None,
    md5: Optional[str] = None,
    *,
    progress: bool = True,
) -> Path:
    """Return the local path of a data file, downloading it into the cache when needed.

    Parameters
    ----------
    relative_path:
        Where the file lives inside a cache folder, with ``/`` separators, e.g.
        ``"mnist/train-images-idx3-ubyte.gz"``.
    url:
        Where to download the file from when no cache holds it.
    sha256, md5:
        Expected checksums (hexadecimal). Every one given is verified, for cached copies too.
    progress:
        Show a tqdm progress bar while downloading.

    Returns
    -------
    pathlib.Path
        The verified file, in ``$COMPANION_DATA_DIR`` or in the writable cache.

    Raises
    ------
    ValueError
        A checksum does not match; the message names the file and both hashes. A downloaded file
        that fails is deleted, and so is a copy in the writable cache that fails (before it is
        downloaded again, so that a failed download leaves no bad copy); a seeded file is never touched.
    FileNotFoundError
        The file is in no cache and cannot be downloaded (offline, HTTP error, ...); the message
        names the file, the URL and the folders where a copy can be placed.
    """
    rel = _check_relative_path(relative_path)
    if not isinstance(url, str) or not url:
        raise ValueError(f"url must be a non-empty string, got {url!r}")
    checks = (("sha256", _check_hex("sha256", sha256, 64)), ("md5", _check_hex("md5", md5, 32)))
    expected = {alg: value for alg, value in checks if value is not None}

    # 1. The read-only seeded cache: use it in place, never modify it.
    seeded_root = data_dir()
    if seeded_root is not None:
        seeded = seeded_root.joinpath(*rel.parts)
        if seeded.is_file():
            bad = _mismatches(seeded, expected)
            if bad:
                raise ValueError(
                    _mismatch_message("the seeded file", seeded, bad)
                    + f"\nReplace it with a correct copy, or unset {DATA_DIR_ENV}."
                )
            return seeded

    # 2. The writable cache.
    target = cache_dir().joinpath(*rel.parts)
    stale = None
    if target.is_file():
        stale = _mismatches(target, expected)
        if not stale:
            return target
        # A cached copy that fails its checksum is deleted now, so that a failed download below cannot
        # leave it in the cache, and replaced by a fresh download.
        target.unlink()

    # 3. Download into a temporary file beside the target, verify, then move into place.
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        os.close(fd)
    except OSError as exc:
        raise FileNotFoundError(
            _unavailable_message(rel, url, target, f"cannot write to the cache folder ({exc})")
        ) from exc
    tmp_path = Path(tmp_name)
    try:
        try:
            got = _download(url, tmp_path, expected, label=str(rel), progress=progress)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            # URLError/HTTPError/timeouts are OSErrors; ValueError covers malformed URLs.
            reason = getattr(exc, "reason", None) or exc
            if isinstance(exc, urllib.error.HTTPError):
                reason = f"HTTP {exc.code} {exc.reason}"
            extra = ""
            if stale:
                extra = "\n" + _mismatch_message("the cached copy", target, stale) + " (deleted)"
            raise FileNotFoundError(
                _unavailable_message(rel, url, target, f"download failed: {reason}") + extra
            ) from exc
        bad = [(alg, expected[alg], got[alg]) for alg in expected if got[alg] != expected[alg]]
        if bad:
            raise ValueError(
                _mismatch_message(f"{rel} downloaded from {url}, saved as", target, bad)
                + "\nThe download was deleted; try again, or check the URL."
            )
        os.chmod(tmp_path, 0o644)  # mkstemp creates it private; a cache is meant to be read
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return target


def _unavailable_message(rel: PurePosixPath, url: str, target: Path, reason: str) -> str:
    seeded_root = data_dir()
    if seeded_root is not None:
        seeded_hint = f"{seeded_root.joinpath(*rel.parts)} (${DATA_DIR_ENV}, read-only pre-seeded data)"
    else:
        seeded_hint = f"${DATA_DIR_ENV}/{rel} (a read-only folder of pre-seeded data; the variable is unset)"
    return (
        f"Data file {rel} is not available: {reason}.\n"
        f"  URL: {url}\n"
        f"Download it yourself and place it at either\n"
        f"  {target} (the writable cache: ${CACHE_DIR_ENV}, default ~/.cache/companion), or\n"
        f"  {seeded_hint}."
    )
