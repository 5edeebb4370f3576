"""companion.data.fetch against a real HTTP server on 127.0.0.1: a clean download, a transfer cut short,
a wrong file, a server error and a server that never answers. Each failure must leave no file in the cache
and raise the error the docstring promises, naming the file and the URL."""

from __future__ import annotations

import hashlib
import http.server
import threading
import time
from pathlib import Path

import pytest

from companion.data import download, fetch

PAYLOAD = b"0123456789abcdef" * 65_536  # 1 MiB: more than one read chunk
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
REL = "demo/served.bin"


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass

    def do_GET(self):
        if self.path == "/ok":
            self._send(PAYLOAD)
        elif self.path == "/truncated":  # announces the whole file, sends a third of it, hangs up
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 3])
            self.wfile.flush()
            self.close_connection = True
        elif self.path == "/wrong":
            self._send(PAYLOAD[::-1])
        elif self.path == "/error":
            self.send_error(500, "Internal Server Error")
        elif self.path == "/silent":  # accepts the request, then says nothing for longer than the timeout
            time.sleep(3.0)
            self._send(PAYLOAD)
        else:
            self.send_error(404, "Not Found")

    def _send(self, body: bytes):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.delenv("COMPANION_DATA_DIR", raising=False)
    monkeypatch.setenv("COMPANION_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def files_under(folder: Path):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_clean_download_is_verified_cached_and_not_fetched_again(server, cache):
    path = fetch(REL, f"{server}/ok", sha256=SHA256, progress=False)
    assert path == cache / "demo" / "served.bin" and path.read_bytes() == PAYLOAD
    assert files_under(cache) == ["demo/served.bin"]
    assert fetch(REL, f"{server}/error", sha256=SHA256, progress=False) == path  # the cache answers first


def test_a_transfer_cut_short_raises_and_leaves_nothing(server, cache):
    with pytest.raises(FileNotFoundError, match=r"demo/served.bin is not available: download failed") as info:
        fetch(REL, f"{server}/truncated", sha256=SHA256, progress=False)
    assert f"{server}/truncated" in str(info.value)
    assert files_under(cache) == []


def test_a_wrong_file_fails_its_checksum_and_is_deleted(server, cache):
    with pytest.raises(ValueError, match="sha256") as info:
        fetch(REL, f"{server}/wrong", sha256=SHA256, progress=False)
    assert SHA256 in str(info.value) and hashlib.sha256(PAYLOAD[::-1]).hexdigest() in str(info.value)
    assert files_under(cache) == []


@pytest.mark.parametrize("path, reason", [("/error", "500"), ("/missing", "404")])
def test_a_server_error_is_reported_with_the_status(server, cache, path, reason):
    with pytest.raises(FileNotFoundError, match=reason) as info:
        fetch(REL, f"{server}{path}", sha256=SHA256, progress=False)
    assert "Download it yourself and place it at" in str(info.value)
    assert files_under(cache) == []


def test_a_silent_server_times_out(server, cache, monkeypatch):
    monkeypatch.setattr(download, "_TIMEOUT", 0.5)
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError, match="download failed: .*timed out"):
        fetch(REL, f"{server}/silent", sha256=SHA256, progress=False)
    assert time.perf_counter() - start < 2.5  # gave up after the timeout, did not wait for the server
    assert files_under(cache) == []


def test_a_failed_download_keeps_a_good_cached_copy_untouched(server, cache):
    good = fetch(REL, f"{server}/ok", sha256=SHA256, progress=False)
    stamp = good.stat().st_mtime_ns
    assert fetch(REL, f"{server}/truncated", sha256=SHA256, progress=False) == good  # never downloaded again
    assert good.stat().st_mtime_ns == stamp and files_under(cache) == ["demo/served.bin"]


def test_a_transfer_cut_short_is_refused_even_without_a_checksum(server, cache):
    with pytest.raises(FileNotFoundError, match="transfer cut short: received 349,525 of 1,048,576 bytes"):
        fetch(REL, f"{server}/truncated", progress=False)
    assert files_under(cache) == []
