"""Dataset URLs: streamed to disk, refused above the size limit, never left half-written."""

from __future__ import annotations

import http.server
import json
import threading

import pytest

from kaito.runtime.tuning import download as downloads
from kaito.runtime.tuning.errors import DataError

BODY = b'{"text": "hello"}\n' * 1000


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path.startswith("/missing"):
            self.send_error(404)
            return
        if self.path.startswith("/same/"):  # one row that says which URL it came from
            body = json.dumps({"text": f"from {self.path}"}).encode() + b"\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        if not self.path.startswith("/chunked"):
            self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


def test_file_name_follows_kaito():
    assert downloads.compute_file_name("https://h/x/data.jsonl") == "data.jsonl"
    assert downloads.compute_file_name("https://h/x/data.csv?sig=a&b=c") == "data.csv_sig_a_b_c"
    assert downloads.is_url("https://h/a") and not downloads.is_url("/mnt/data")


def test_download_writes_the_file(server, tmp_path):
    path = downloads.download(f"{server}/train.jsonl", tmp_path, max_bytes=10**6)
    assert path == tmp_path / "train.jsonl" and path.read_bytes() == BODY
    assert not list(tmp_path.glob("*.part"))


@pytest.mark.parametrize("route", ["declared.jsonl", "chunked.jsonl"])
def test_size_limit_refuses_and_leaves_nothing(server, tmp_path, route):
    with pytest.raises(DataError, match="max_download_bytes"):
        downloads.download(f"{server}/{route}", tmp_path, max_bytes=1000)
    assert list(tmp_path.iterdir()) == []


def test_http_error_is_named(server, tmp_path):
    with pytest.raises(DataError, match="missing.jsonl failed: HTTP 404"):
        downloads.download(f"{server}/missing.jsonl", tmp_path, max_bytes=10**6)


def test_unreachable_host_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="failed"):
        downloads.download("http://127.0.0.1:9/x.jsonl", tmp_path, max_bytes=10, timeout_s=2)


def test_url_sources_are_downloaded_for_loading(server, tmp_path):
    from kaito.runtime.tuning import data as datas
    from kaito.runtime.tuning.config import DatasetSection

    files = datas.resolve_files([f"{server}/rows.jsonl"], DatasetSection(), tmp_path / "dl")
    assert files == [tmp_path / "dl" / "000-rows.jsonl"] and files[0].read_bytes() == BODY


def test_urls_with_the_same_file_name_are_both_kept(server, tmp_path):
    from types import SimpleNamespace

    from kaito.runtime.tuning import data as datas
    from kaito.runtime.tuning.config import DatasetSection

    local = tmp_path / "train.jsonl"
    local.write_text(json.dumps({"text": "from the local file"}) + "\n")
    urls = [f"{server}/same/x/train.jsonl", str(local), f"{server}/same/y/train.jsonl"]
    files = datas.resolve_files(urls, DatasetSection(), tmp_path / "dl")
    assert [f.name for f in files] == ["000-train.jsonl", "train.jsonl", "002-train.jsonl"]
    loaded = datas.load_examples(files, DatasetSection(), SimpleNamespace(eos_token="", chat_template=None))
    assert [e.text for e in loaded.examples] == ["from /same/x/train.jsonl", "from the local file",
                                                 "from /same/y/train.jsonl"]
