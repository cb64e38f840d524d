"""ADD: local archives extracted (each compression), URLs fetched, heredoc files written."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import http.server
import io
import lzma
import os
import re
import tarfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zstandard

from builder.errors import BuildError
from builder.fileops import copy_into
from builder.graph import InlineFile, InlineSource, UrlSource
from tests.conftest import require_root
from tests.fixtures.context_files import make_tree
from tests.unit.builder.fileops.helpers import copy_op, listing, owner

MTIME = 1485449953


def tar_bytes(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, content in members:
            tar.addfile(info, io.BytesIO(content) if info.isreg() else None)
    return buffer.getvalue()


def entry(
    name: str, kind: bytes = tarfile.REGTYPE, content: bytes = b"", **fields: object
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(content) if kind == tarfile.REGTYPE else 0
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.mtime = MTIME
    for key, value in fields.items():
        setattr(info, key, value)
    return info, content


SAMPLE = tar_bytes(
    entry("subdirectory/", tarfile.DIRTYPE, mode=0o775, uid=2510, gid=2516),
    entry("subdirectory/archived.txt", content=b"archived\n", mode=0o664, uid=2510, gid=2516),
    entry("subdirectory/setuid", content=b"x", mode=0o4755),
)

COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "plain": lambda data: data,
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
}


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "rootfs", {"etc/": None})


def add(ctx: Path, rootfs: Path, *paths: str, dest: str) -> None:
    copy_into(copy_op(*paths, dest=dest, unpack=True), dest_root=rootfs, source_root=ctx)


@pytest.mark.parametrize("compression", sorted(COMPRESSORS))
def test_local_archive_is_extracted(tmp_path: Path, rootfs: Path, compression: str) -> None:
    ctx = make_tree(tmp_path / "ctx", {})
    (ctx / "sub.tar.any").write_bytes(COMPRESSORS[compression](SAMPLE))
    add(ctx, rootfs, "sub.tar.any", dest="/sub/")
    assert listing(rootfs / "sub") == {
        "subdirectory": ("d", "775", ""),
        "subdirectory/archived.txt": ("f", "664", "archived\n"),
        "subdirectory/setuid": ("f", "4755", "x"),
    }
    assert os.stat(rootfs / "sub/subdirectory").st_mtime == MTIME
    assert os.stat(rootfs / "sub/subdirectory/archived.txt").st_mtime == MTIME


def test_archive_owners_are_kept_while_plain_files_become_root(tmp_path: Path, rootfs: Path) -> None:
    require_root()
    ctx = make_tree(tmp_path / "ctx", {"archive/should-be-owned-by-99": "x"})
    os.chown(ctx / "archive/should-be-owned-by-99", 99, 99)
    (ctx / "archive.tar").write_bytes(
        tar_bytes(entry("archive/should-be-owned-by-99", content=b"x", mode=0o640, uid=99, gid=99))
    )
    add(ctx, rootfs, "archive.tar", dest="subdir1/")
    add(ctx, rootfs, "archive/", dest="subdir2/")
    chowned = copy_op("archive.tar", dest="/chowned/", unpack=True)
    copy_into(chowned, dest_root=rootfs, source_root=ctx, chown=(5, 6))
    assert owner(rootfs / "subdir1/archive/should-be-owned-by-99") == (99, 99)
    assert owner(rootfs / "subdir2/should-be-owned-by-99") == (0, 0)
    assert owner(rootfs / "chowned") == (5, 6)
    assert owner(rootfs / "chowned/archive") == (0, 0)  # implied parents belong to root
    assert owner(rootfs / "chowned/archive/should-be-owned-by-99") == (5, 6)


def test_archive_symlinks_resolve_inside_the_destination(tmp_path: Path, rootfs: Path) -> None:
    ctx = make_tree(tmp_path / "ctx", {})
    (ctx / "foobar.tar").write_bytes(
        tar_bytes(
            entry("symldir1", tarfile.SYMTYPE, linkname=".."),
            entry("symldir1/etc/myfile", content=b"hello\n", mode=0o664),
            entry("/abs/file", content=b"abs"),
        )
    )
    add(ctx, rootfs, "foobar.tar", dest="/testsubdir")
    assert listing(rootfs / "testsubdir") == {
        "abs": ("d", "755", ""),
        "abs/file": ("f", "644", "abs"),
        "etc": ("d", "755", ""),
        "etc/myfile": ("f", "664", "hello\n"),
        "symldir1": ("l", "777", ".."),
    }
    assert sorted(os.listdir(rootfs / "etc")) == []


def test_archive_entry_climbing_out_is_refused(tmp_path: Path, rootfs: Path) -> None:
    ctx = make_tree(tmp_path / "ctx", {})
    (ctx / "evil.tar").write_bytes(tar_bytes(entry("../evil", content=b"x")))
    with pytest.raises(BuildError, match="outside the destination"):
        add(ctx, rootfs, "evil.tar", dest="/x/")
    assert not (rootfs / "evil").exists()


def test_archive_entries_replace_what_is_in_the_way(tmp_path: Path, rootfs: Path) -> None:
    make_tree(rootfs, {"dirone/onefile.txt": "one", "new-directory": "file"})
    ctx = make_tree(tmp_path / "ctx", {})
    (ctx / "test.tar").write_bytes(
        tar_bytes(entry("dirone", content=b""), entry("new-directory/", tarfile.DIRTYPE, mode=0o775))
    )
    add(ctx, rootfs, "test.tar", dest="/")
    assert listing(rootfs)["dirone"] == ("f", "644", "")
    assert listing(rootfs)["new-directory"] == ("d", "775", "")


def test_a_file_that_is_not_an_archive_is_copied(tmp_path: Path, rootfs: Path) -> None:
    ctx = make_tree(tmp_path / "ctx", {"fake.tar.gz": "not a tar"})
    (ctx / "empty.tar").write_bytes(b"\0" * 1024)
    add(ctx, rootfs, "fake.tar.gz", "empty.tar", dest="/files/")
    assert sorted(listing(rootfs / "files")) == ["empty.tar", "fake.tar.gz"]


@pytest.fixture
def web_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    served = make_tree(tmp_path / "www", {"files/tool.bin": "binary", "files/sample.tar": ""})
    (served / "files/sample.tar").write_bytes(SAMPLE)
    os.utime(served / "files/tool.bin", (MTIME, MTIME))

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(served), **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", served
    finally:
        server.shutdown()
        server.server_close()


def test_url_is_fetched_named_timed_and_0600(web_root: tuple[str, Path], rootfs: Path) -> None:
    base, _ = web_root
    op = copy_op(f"{base}/files/tool.bin", dest="/dl/", source=UrlSource(f"{base}/files/tool.bin"))
    copy_into(op, dest_root=rootfs, source_root=None)
    archive = copy_op("x", dest="/dl/", source=UrlSource(f"{base}/files/sample.tar"), unpack=True)
    copy_into(archive, dest_root=rootfs, source_root=None)
    assert listing(rootfs / "dl") == {
        "tool.bin": ("f", "600", "binary"),
        "sample.tar": ("f", "600", SAMPLE.decode()),
    }
    assert os.stat(rootfs / "dl/tool.bin").st_mtime == MTIME


def test_url_checksum_is_verified(web_root: tuple[str, Path], rootfs: Path) -> None:
    base, _ = web_root
    url = f"{base}/files/tool.bin"
    good = "sha256:" + hashlib.sha256(b"binary").hexdigest()
    copy_into(
        copy_op(url, dest="/ok", source=UrlSource(url, checksum=good)), dest_root=rootfs, source_root=None
    )
    assert (rootfs / "ok").read_text() == "binary"
    bad = "sha256:" + "0" * 64
    with pytest.raises(BuildError, match=re.escape(f"digest mismatch for {url}: expected {bad}")):
        copy_into(
            copy_op(url, dest="/bad", source=UrlSource(url, checksum=bad)), dest_root=rootfs, source_root=None
        )
    assert not (rootfs / "bad").exists()


def test_url_failure_is_a_build_error(web_root: tuple[str, Path], rootfs: Path) -> None:
    base, _ = web_root
    op = copy_op("x", dest="/x", source=UrlSource(f"{base}/missing"))
    with pytest.raises(BuildError, match="failed to fetch"):
        copy_into(op, dest_root=rootfs, source_root=None)


def test_heredoc_files_are_written(rootfs: Path) -> None:
    source = InlineSource((InlineFile("hello.sh", "echo hi\n", 0o755), InlineFile("note", "text\n")))
    copy_into(copy_op("hello.sh", "note", dest="/app/", source=source), dest_root=rootfs, source_root=None)
    assert listing(rootfs / "app") == {"hello.sh": ("f", "755", "echo hi\n"), "note": ("f", "644", "text\n")}
