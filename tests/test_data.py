"""Tests of companion.data: the verified download cache and the MNIST loader.

No test touches the network: downloads come from local ``file://`` URLs or a patched
``urllib.request.urlopen``. The MNIST tests read the real files from ``$COMPANION_DATA_DIR`` or the
writable cache and are skipped when neither holds them.
"""

import gzip
import hashlib
import io
import struct
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from companion.data import mnist
from companion.data import cache_dir, data_dir, fetch, file_hash, load_mnist

PAYLOAD = b"course data file\n" * 1000
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
MD5 = hashlib.md5(PAYLOAD).hexdigest()
WRONG_SHA256 = "0" * 64
REL = "demo/payload.bin"


@pytest.fixture
def caches(tmp_path, monkeypatch):
    """Point both caches at empty temporary folders; return (seeded, writable)."""
    seeded = tmp_path / "seeded"
    writable = tmp_path / "cache"
    seeded.mkdir()
    monkeypatch.setenv("COMPANION_DATA_DIR", str(seeded))
    monkeypatch.setenv("COMPANION_CACHE_DIR", str(writable))
    return seeded, writable


@pytest.fixture
def source(tmp_path):
    """A local file served through a file:// URL."""
    path = tmp_path / "server" / "payload.bin"
    path.parent.mkdir()
    path.write_bytes(PAYLOAD)
    return path.as_uri()


@pytest.fixture
def no_network(monkeypatch):
    """Make every download attempt fail as if the machine were offline; count the attempts."""
    attempts = []

    def offline(request, *args, **kwargs):
        attempts.append(getattr(request, "full_url", request))
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    return attempts


def files_under(folder: Path):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


# --------------------------------------------------------------------------- cache folders


def test_cache_dirs_follow_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPANION_DATA_DIR", str(tmp_path / "seeded"))
    monkeypatch.setenv("COMPANION_CACHE_DIR", str(tmp_path / "cache"))
    assert data_dir() == tmp_path / "seeded"
    assert cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("COMPANION_DATA_DIR")
    monkeypatch.delenv("COMPANION_CACHE_DIR")
    assert data_dir() is None
    assert cache_dir() == Path.home() / ".cache" / "companion"


# --------------------------------------------------------------------------- downloads


def test_download_verifies_and_caches(caches, source, monkeypatch):
    _, writable = caches
    path = fetch(REL, source, sha256=SHA256, md5=MD5, progress=False)
    assert path == writable / "demo" / "payload.bin"
    assert path.read_bytes() == PAYLOAD
    assert files_under(writable) == [REL]  # no temporary file left behind

    # A second call is served from the cache without any download.
    def fail(*args, **kwargs):
        raise AssertionError("fetch downloaded a file that was already cached")

    monkeypatch.setattr(urllib.request, "urlopen", fail)
    assert fetch(REL, source, sha256=SHA256, md5=MD5) == path


def test_checksum_mismatch_raises_and_leaves_no_file(caches, source):
    _, writable = caches
    with pytest.raises(ValueError) as excinfo:
        fetch(REL, source, sha256=WRONG_SHA256, progress=False)
    message = str(excinfo.value)
    assert "payload.bin" in message
    assert WRONG_SHA256 in message and SHA256 in message  # expected and actual hashes
    assert not writable.exists() or files_under(writable) == []


def test_md5_mismatch_raises(caches, source):
    with pytest.raises(ValueError, match=MD5):
        fetch(REL, source, sha256=SHA256, md5="f" * 32, progress=False)


class _BrokenResponse(io.BytesIO):
    """A response that delivers part of the file and then loses the connection."""

    headers = {"Content-Length": str(len(PAYLOAD))}

    def __init__(self, error):
        super().__init__(PAYLOAD[: len(PAYLOAD) // 2])
        self.error = error
        self.calls = 0

    def read(self, size=-1):
        self.calls += 1
        if self.calls > 1:
            raise self.error
        return super().read(size)


@pytest.mark.parametrize("error", [ConnectionResetError("connection reset by peer"), KeyboardInterrupt()])
def test_interrupted_download_leaves_no_partial_file(caches, monkeypatch, error):
    _, writable = caches
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: _BrokenResponse(error))
    expected = FileNotFoundError if isinstance(error, OSError) else KeyboardInterrupt
    with pytest.raises(expected):
        fetch(REL, "https://example.org/payload.bin", sha256=SHA256, progress=False)
    assert files_under(writable) == []  # neither the target nor the temporary .part file


def test_failed_download_keeps_previous_good_copy(caches, source, monkeypatch):
    _, writable = caches
    path = fetch(REL, source, sha256=SHA256, progress=False)
    # Without a checksum to compare against, the cached copy is accepted as it is.
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: _BrokenResponse(OSError("boom")))
    assert fetch(REL, source) == path
    assert path.read_bytes() == PAYLOAD


def test_corrupt_cached_copy_is_deleted_even_when_the_download_fails(caches, monkeypatch):
    _, writable = caches
    target = writable / "demo" / "payload.bin"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"truncated")
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: _BrokenResponse(OSError("boom")))
    with pytest.raises(FileNotFoundError, match=r"(?s)Checksum mismatch for the cached copy.*\(deleted\)"):
        fetch(REL, "https://example.org/payload.bin", sha256=SHA256, progress=False)
    assert files_under(writable) == []


def test_corrupt_cached_copy_is_downloaded_again(caches, source):
    _, writable = caches
    target = writable / "demo" / "payload.bin"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"truncated")
    path = fetch(REL, source, sha256=SHA256, progress=False)
    assert path == target and path.read_bytes() == PAYLOAD
    assert files_under(writable) == [REL]


# --------------------------------------------------------------------------- seeded cache


def test_seeded_cache_is_used_in_place(caches, no_network):
    seeded, writable = caches
    copy = seeded / "demo" / "payload.bin"
    copy.parent.mkdir()
    copy.write_bytes(PAYLOAD)
    assert fetch(REL, "https://example.org/payload.bin", sha256=SHA256, md5=MD5) == copy
    assert no_network == []  # no download attempted
    assert not writable.exists()  # nothing copied into the writable cache


def test_seeded_cache_wins_over_writable_cache(caches, no_network):
    seeded, writable = caches
    for root in (seeded, writable):
        (root / "demo").mkdir(parents=True)
        (root / "demo" / "payload.bin").write_bytes(PAYLOAD)
    assert fetch(REL, "https://example.org/payload.bin", sha256=SHA256) == seeded / REL


def test_corrupt_seeded_copy_raises_and_is_left_alone(caches, no_network):
    seeded, _ = caches
    copy = seeded / "demo" / "payload.bin"
    copy.parent.mkdir()
    copy.write_bytes(b"not the right bytes")
    with pytest.raises(ValueError) as excinfo:
        fetch(REL, "https://example.org/payload.bin", sha256=SHA256)
    assert str(copy) in str(excinfo.value) and SHA256 in str(excinfo.value)
    assert copy.read_bytes() == b"not the right bytes"


def test_writable_cache_is_used_without_seeded_cache(tmp_path, monkeypatch, no_network):
    monkeypatch.delenv("COMPANION_DATA_DIR", raising=False)
    monkeypatch.setenv("COMPANION_CACHE_DIR", str(tmp_path))
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "payload.bin").write_bytes(PAYLOAD)
    assert fetch(REL, "https://example.org/payload.bin", md5=MD5) == tmp_path / REL
    assert no_network == []


# --------------------------------------------------------------------------- offline


def test_offline_error_names_file_url_and_folders(caches, no_network):
    seeded, writable = caches
    url = "https://example.org/data/payload.bin"
    with pytest.raises(FileNotFoundError) as excinfo:
        fetch(REL, url, sha256=SHA256, progress=False)
    message = str(excinfo.value)
    assert no_network == [url]
    for expected in (REL, url, "COMPANION_DATA_DIR", "COMPANION_CACHE_DIR", str(writable), str(seeded)):
        assert expected in message, f"{expected!r} missing from: {message}"
    assert files_under(writable) == []


def test_missing_local_source_is_reported_like_offline(caches, tmp_path):
    url = (tmp_path / "nowhere" / "payload.bin").as_uri()
    with pytest.raises(FileNotFoundError, match="payload.bin"):
        fetch(REL, url, progress=False)


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize("bad", ["", "/etc/passwd", "../outside.bin", "demo/../../x", "demo/"])
def test_bad_relative_path_raises(caches, no_network, bad):
    with pytest.raises(ValueError, match="relative_path"):
        fetch(bad, "https://example.org/x")


def test_bad_checksum_arguments_raise(caches, no_network):
    with pytest.raises(ValueError, match="sha256"):
        fetch(REL, "https://example.org/x", sha256="abc")
    with pytest.raises(ValueError, match="md5"):
        fetch(REL, "https://example.org/x", md5="z" * 32)
    with pytest.raises(TypeError, match="relative_path"):
        fetch(3, "https://example.org/x")


def test_file_hash(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(PAYLOAD)
    assert file_hash(path) == SHA256
    assert file_hash(path, "md5") == MD5


def test_importing_the_data_package_needs_no_framework():
    code = (
        "import sys, companion.data\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'torch', 'tensorflow', 'keras', 'tf_keras', 'jax', 'gymnasium'})\n"
        "print(heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout


# --------------------------------------------------------------------------- idx parsing


def write_idx(path, magic, dims, payload):
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">" + "I" * (1 + len(dims)), magic, *dims))
        f.write(payload)
    return path


def test_idx_readers_on_a_small_file(tmp_path):
    pixels = np.arange(3 * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(3, 28, 28)
    images = write_idx(tmp_path / "i.gz", 2051, (3, 28, 28), pixels.tobytes())
    labels = write_idx(tmp_path / "l.gz", 2049, (3,), bytes([7, 2, 1]))
    np.testing.assert_array_equal(mnist.read_idx_images(images), pixels)
    np.testing.assert_array_equal(mnist.read_idx_images(images, limit=2), pixels[:2])
    np.testing.assert_array_equal(mnist.read_idx_labels(labels), [7, 2, 1])
    assert mnist.read_idx_images(images).flags.writeable


@pytest.mark.parametrize(
    "magic, dims, payload, message",
    [
        (2049, (3, 28, 28), bytes(3 * 784), "magic"),
        (2051, (3, 28, 27), bytes(3 * 784), "28x28"),
        (2051, (3, 28, 28), bytes(2 * 784), "truncated"),
        (2051, (3, 28, 28), bytes(4 * 784), "after"),
        (2051, (2, 28, 28), bytes(2 * 784), "announces 2 images, expected 3"),
    ],
)
def test_idx_images_reject_bad_files(tmp_path, magic, dims, payload, message):
    path = write_idx(tmp_path / "bad.gz", magic, dims, payload)
    with pytest.raises(ValueError, match=message):
        mnist.read_idx_images(path, expected_n=3)


def test_idx_labels_reject_bad_magic(tmp_path):
    path = write_idx(tmp_path / "bad.gz", 2051, (3,), bytes(3))
    with pytest.raises(ValueError, match="magic"):
        mnist.read_idx_labels(path)


# --------------------------------------------------------------------------- MNIST


@pytest.mark.parametrize("split", ["validation", "TRAIN", "", None, 0])
def test_load_mnist_rejects_bad_split(split):
    with pytest.raises(ValueError, match="split"):
        load_mnist(split)


@pytest.mark.parametrize("limit", [0, -5, 60_001, 2.5, "10", True])
def test_load_mnist_rejects_bad_limit(limit):
    with pytest.raises(ValueError, match="limit"):
        load_mnist("train", limit=limit)


def _mnist_available():
    names = [name for files in mnist.MNIST_FILES.values() for name, _, _ in files.values()]
    roots = [root for root in (data_dir(), cache_dir()) if root is not None]
    return all(any((root / "mnist" / name).is_file() for root in roots) for name in names)


needs_mnist = pytest.mark.skipif(
    not _mnist_available(),
    reason="the MNIST idx files are in no local cache: set COMPANION_DATA_DIR to a folder holding "
    "mnist/*.gz (or run a chapter once online to fill ~/.cache/companion)",
)


@needs_mnist
def test_mnist_train_split():
    images, labels = load_mnist("train", as_float=False)
    assert images.shape == (60_000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (60_000,) and labels.dtype == np.int64
    assert labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert np.bincount(labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert round(float(images.mean(dtype=np.float64)), 3) == 33.318


@needs_mnist
def test_mnist_test_split_as_float():
    images, labels = load_mnist("test")
    assert images.shape == (10_000, 28, 28) and images.dtype == np.float32
    assert labels.shape == (10_000,) and labels.dtype == np.int64
    assert float(images.min()) == 0.0 and float(images.max()) == 1.0
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@needs_mnist
def test_mnist_limit_returns_the_first_examples():
    images, labels = load_mnist("train", as_float=True, limit=10)
    assert images.shape == (10, 28, 28) and labels.tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    full, _ = load_mnist("train", as_float=False, limit=100)
    np.testing.assert_allclose(images, full[:10] / 255.0, rtol=0, atol=1e-7)


@needs_mnist
def test_mnist_tensors_carves_validation_from_training_images_and_shapes_them():
    torch = pytest.importorskip("torch")
    from companion.training import mnist_tensors

    x_train, y_train, x_val, y_val, x_test, y_test = mnist_tensors(100, val=20, test=30, shape="channel")
    images, labels = load_mnist("train", limit=120)
    test_images, test_labels = load_mnist("test", limit=30)
    assert x_train.shape == (100, 1, 28, 28) and x_train.dtype == torch.float32 and y_train.dtype == torch.int64
    np.testing.assert_array_equal(x_train[:, 0].numpy(), images[:100])
    np.testing.assert_array_equal(x_val[:, 0].numpy(), images[100:])  # the next 20, not test images
    np.testing.assert_array_equal(y_val.numpy(), labels[100:])
    np.testing.assert_array_equal(x_test[:, 0].numpy(), test_images)
    np.testing.assert_array_equal(y_test.numpy(), test_labels)
    flat = mnist_tensors(5, test=0, shape="flat")
    assert flat.x_train.shape == (5, 784) and flat.x_val is None and flat.x_test is None
    assert mnist_tensors(5).x_test.shape == (10_000, 28, 28)


@pytest.mark.parametrize("kwargs, match", [
    ({"train": 0}, "train"), ({"train": 59_990, "val": 20}, "train"), ({"train": 5, "test": 10_001}, "test"),
    ({"train": 5, "val": -1}, "val"), ({"train": 5, "shape": "nchw"}, "shape"),
])
def test_mnist_tensors_rejects_bad_arguments(kwargs, match):
    pytest.importorskip("torch")
    from companion.training import mnist_tensors

    with pytest.raises(ValueError, match=match):
        mnist_tensors(**kwargs)
