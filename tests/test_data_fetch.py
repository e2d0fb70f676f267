"""Downloads against a local HTTP server: checksums, temp-file discipline, safe tar extraction."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import struct
import tarfile
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from condgan.data import fetch, paths
from condgan.data.fetch import Source, fetch_dataset
from condgan.data.idx import load_idx
from condgan.errors import ConfigError, DataError
from condgan.registry import Registry

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.requests.append(self.path)
        if self.path == "/cut.bin":  # promises 100 bytes, sends 10, hangs up
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    """A local HTTP server over tmp_path/www; yields (root dir, base URL, list of requested paths)."""
    root = tmp_path / "www"
    root.mkdir()
    requests: list[str] = []
    handler = type("Handler", (_QuietHandler,), {"requests": requests})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/", requests
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.delenv("CONDGAN_DATA", raising=False)
    monkeypatch.delenv("CONDGAN_DATA_MIRROR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(paths, "SYSTEM_DATA_DIR", tmp_path / "system")


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def use_sources(monkeypatch, **sources: Source) -> None:
    registry: Registry[Source] = Registry("downloadable dataset")
    for name, source in sources.items():
        registry.add(name, source)
    monkeypatch.setattr(fetch, "SOURCES", registry)


def test_downloads_verifies_and_is_idempotent(server, monkeypatch):
    root, url, requests = server
    files = {"a.bin": b"alpha" * 1000, "b.bin": b"beta"}
    for name, content in files.items():
        (root / name).write_bytes(content)
    use_sources(monkeypatch, toy=Source("http://unused.invalid/", tuple((n, md5(c)) for n, c in files.items())))
    dest = fetch_dataset("toy", base_url=url)
    assert dest == paths.cache_dir("toy")
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == files
    assert fetch_dataset("toy", base_url=url) == dest
    assert requests == ["/a.bin", "/b.bin"]  # the second call found both files good


def test_mirror_environment_variable(server, monkeypatch, tmp_path):
    root, url, requests = server
    (root / "a.bin").write_bytes(b"x")
    use_sources(monkeypatch, toy=Source("http://unused.invalid/", (("a.bin", md5(b"x")),)))
    monkeypatch.setenv("CONDGAN_DATA_MIRROR", url.rstrip("/"))
    assert (fetch_dataset("toy", tmp_path / "dest") / "a.bin").read_bytes() == b"x"
    assert requests == ["/a.bin"]


def test_checksum_mismatch_deletes_download_and_names_file(server, monkeypatch, tmp_path):
    root, url, _ = server
    (root / "a.bin").write_bytes(b"tampered")
    expected = md5(b"original")
    use_sources(monkeypatch, toy=Source(url, (("a.bin", expected),)))
    dest = tmp_path / "dest"
    with pytest.raises(DataError) as err:
        fetch_dataset("toy", dest)
    message = str(err.value)
    assert "a.bin" in message and f"expected {expected}" in message and f"found {md5(b'tampered')}" in message
    assert list(dest.iterdir()) == []  # neither the file nor its temporary remains


def test_http_error_names_url(server, monkeypatch, tmp_path):
    _, url, _ = server
    use_sources(monkeypatch, toy=Source(url, (("missing.bin", md5(b"")),)))
    with pytest.raises(DataError, match=r"cannot download .*missing.bin.*404"):
        fetch_dataset("toy", tmp_path / "dest")
    assert list((tmp_path / "dest").iterdir()) == []


def test_connection_cut_mid_file(server, monkeypatch, tmp_path):
    _, url, _ = server
    use_sources(monkeypatch, toy=Source(url, (("cut.bin", md5(b"x" * 100)),)))
    with pytest.raises(DataError, match=r"cut.bin from .*: the connection closed after 10 of 100 bytes"):
        fetch_dataset("toy", tmp_path / "dest")
    assert list((tmp_path / "dest").iterdir()) == []


def test_unknown_name_lists_choices():
    with pytest.raises(ConfigError, match="cifar10, fashion-mnist, mnist"):
        fetch_dataset("imagenet")


# --- tar extraction ----------------------------------------------------------------------------


def make_tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, content in members:
            if content is not None:
                info.size = len(content)
            tar.addfile(info, io.BytesIO(content) if content is not None else None)
    return buf.getvalue()


def file_member(name: str, content: bytes) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), content


def test_cifar_archive_is_extracted_and_removed(server, monkeypatch, tmp_path):
    root, url, requests = server
    archive = make_tar([file_member("cifar-10-batches-py/data_batch_1", b"batch"),
                        file_member("cifar-10-batches-py/batches.meta", b"meta")])
    (root / "cifar-10-python.tar.gz").write_bytes(archive)
    use_sources(monkeypatch, cifar10=Source(url, (("cifar-10-python.tar.gz", md5(archive)),),
                                            extract_dir="cifar-10-batches-py"))
    dest = fetch_dataset("cifar10")
    assert sorted(p.name for p in dest.iterdir()) == ["cifar-10-batches-py"]
    assert (dest / "cifar-10-batches-py" / "data_batch_1").read_bytes() == b"batch"
    fetch_dataset("cifar10")
    assert len(requests) == 1  # already extracted: nothing downloaded


@pytest.mark.parametrize("evil", [
    file_member("cifar-10-batches-py/../../escaped", b"x"),
    file_member("/tmp/condgan-absolute-escape", b"x"),
    file_member("elsewhere/file", b"x"),
])
def test_tar_members_outside_target_are_refused(tmp_path, evil):
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(make_tar([file_member("cifar-10-batches-py/ok", b"ok"), evil]))
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(DataError, match=f"refusing to extract member {evil[0].name!r}"):
        fetch.extract_tar(archive, dest, "cifar-10-batches-py")
    assert list(dest.iterdir()) == []
    assert not (tmp_path / "escaped").exists() and not Path("/tmp/condgan-absolute-escape").exists()


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE])
def test_tar_links_are_refused(tmp_path, kind):
    link = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
    link.type, link.linkname = kind, "/etc/passwd"
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(make_tar([(link, None)]))
    (tmp_path / "dest").mkdir()
    with pytest.raises(DataError, match="not a regular file or directory"):
        fetch.extract_tar(archive, tmp_path / "dest", "cifar-10-batches-py")


def test_corrupt_archive_names_file(tmp_path):
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(gzip.compress(b"not a tar file at all" * 40)[:-30])
    (tmp_path / "dest").mkdir()
    with pytest.raises(DataError, match="a.tar.gz: cannot extract"):
        fetch.extract_tar(archive, tmp_path / "dest", "cifar-10-batches-py")


# --- the real Fashion-MNIST checksums ----------------------------------------------------------

# Debian's dataset-fashion-mnist re-wrote the gzip headers of the official files (no file name,
# mtime reset); the deflate streams are the official ones. These are the original header mtimes.
_OFFICIAL_MTIME = {"train": 1504176606, "t10k": 1504176627}


def official_gzip(debian_file: Path) -> bytes:
    """Rebuild the officially published .gz from Debian's copy: gzip header with FNAME and mtime."""
    raw = debian_file.read_bytes()
    assert raw[:4] == b"\x1f\x8b\x08\x00", "expected a gzip header without optional fields"
    stem = debian_file.name.removesuffix(".gz")
    mtime = _OFFICIAL_MTIME[stem.split("-")[0]]
    return b"\x1f\x8b\x08\x08" + struct.pack("<I", mtime) + raw[8:10] + stem.encode() + b"\0" + raw[10:]


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="dataset-fashion-mnist is not installed")
def test_published_fashion_mnist_md5s_match_the_real_files(server, tmp_path):
    """fetch_dataset with the real checksum table accepts the real files, which then load."""
    root, url, _ = server
    for path in DEBIAN_FASHION.glob("*.gz"):
        (root / path.name).write_bytes(official_gzip(path))
    dest = fetch_dataset("fashion-mnist", tmp_path / "fm", base_url=url)
    test = load_idx("fashion-mnist", "test", data_dir=dest)
    assert test.x().shape == (10000, 1, 28, 28)
    assert np.bincount(test.y.numpy()).tolist() == [1000] * 10
