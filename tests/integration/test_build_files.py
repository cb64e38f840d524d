"""``kiln build`` of COPY, ADD and WORKDIR, and deletions across layers: the exact result.

One Dockerfile exercises each case on the busybox base; the test exports the image's
filesystem (``-o type=local``) and compares every entry outside busybox's own (type, mode,
owner, content, link target), then the config and the last layer's tar entries.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
from pathlib import Path

import pytest
import zstandard

from builder.store import Store
from tests.conftest import require_root
from tests.fixtures.busybox import busybox_tar  # noqa: F401  (a fixture)
from tests.fixtures.kiln_cli import describe_tree, import_busybox, kiln

pytestmark = [pytest.mark.root, pytest.mark.slow]

DOCKERFILE = """\
FROM busybox AS src
RUN mkdir -p /out && echo from-stage > /out/built.txt && ln -s built.txt /out/link

FROM busybox
RUN echo keep > /keep && mkdir -p /gone/deep && echo x > /gone/deep/f \\
    && mkdir /becomes && echo y > /becomes/inner && echo z > /etc/removed
COPY *.txt /wild/
COPY dir /dircontents/
COPY dir/sub /noslash
COPY a.txt /renamed
COPY --chown=app:app a.txt /owned-name/
COPY --chown=1234:5678 b.txt /owned-ids/
COPY --chmod=0600 a.txt /mode-octal/
COPY --chmod=u=rwx,g=rx,o= b.txt /mode-symbolic/
COPY --from=src /out/ /fromstage/
ADD t.tar.gz /x/gz/
ADD t.tar.bz2 /x/bz2/
ADD t.tar.xz /x/xz/
ADD t.tar.zst /x/zst/
USER app
WORKDIR /home/app/work
USER root
RUN rm -rf /gone /etc/removed /becomes && echo file > /becomes
"""

BUSYBOX_OWN = ("bin", "sbin", "usr", "linuxrc", "dev", "proc", "sys", "root", "tmp")


def _payload_tar(tag: str) -> bytes:
    """A tar holding ``payload-<tag>/`` (0750) and ``payload-<tag>/f.txt`` (0640, 7:8)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        directory = tarfile.TarInfo(f"payload-{tag}")
        directory.type = tarfile.DIRTYPE
        directory.mode = 0o750
        directory.mtime = 1_600_000_000
        archive.addfile(directory)
        data = f"{tag}\n".encode()
        member = tarfile.TarInfo(f"payload-{tag}/f.txt")
        member.size, member.mode, member.uid, member.gid = len(data), 0o640, 7, 8
        member.mtime = 1_600_000_000
        archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def _write_context(context: Path) -> None:
    (context / "dir" / "sub").mkdir(parents=True)
    (context / "a.txt").write_text("A\n")
    (context / "b.txt").write_text("B\n")
    (context / "c.md").write_text("M\n")
    (context / "dir" / "y.txt").write_text("Y\n")
    (context / "dir" / "sub" / "x.txt").write_text("X\n")
    (context / "t.tar.gz").write_bytes(gzip.compress(_payload_tar("gz")))
    (context / "t.tar.bz2").write_bytes(bz2.compress(_payload_tar("bz2")))
    (context / "t.tar.xz").write_bytes(lzma.compress(_payload_tar("xz")))
    (context / "t.tar.zst").write_bytes(zstandard.ZstdCompressor().compress(_payload_tar("zst")))
    (context / "Dockerfile").write_text(DOCKERFILE)


def _expected_tree() -> dict[str, tuple[object, ...]]:
    root_dir = ("dir", "0o755", 0, 0)
    app_dir = ("dir", "0o755", 1000, 1000)
    expected: dict[str, tuple[object, ...]] = {
        "becomes": ("file", "0o644", 0, 0, b"file\n"),
        "dircontents": root_dir,
        "dircontents/sub": root_dir,
        "dircontents/sub/x.txt": ("file", "0o644", 0, 0, b"X\n"),
        "dircontents/y.txt": ("file", "0o644", 0, 0, b"Y\n"),
        "etc": root_dir,
        "etc/group": ("file", "0o644", 0, 0, b"root:x:0:\nnogroup:x:65534:\napp:x:1000:\n"),
        "etc/passwd": (
            "file",
            "0o644",
            0,
            0,
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
            b"app:x:1000:1000:app:/home/app:/bin/sh\n",
        ),
        "fromstage": root_dir,
        "fromstage/built.txt": ("file", "0o644", 0, 0, b"from-stage\n"),
        "fromstage/link": ("link", 0, 0, "built.txt"),
        "home": app_dir,
        "home/app": app_dir,
        "home/app/work": app_dir,
        "keep": ("file", "0o644", 0, 0, b"keep\n"),
        "mode-octal": root_dir,
        "mode-octal/a.txt": ("file", "0o600", 0, 0, b"A\n"),
        "mode-symbolic": root_dir,
        "mode-symbolic/b.txt": ("file", "0o750", 0, 0, b"B\n"),
        "noslash": root_dir,
        "noslash/x.txt": ("file", "0o644", 0, 0, b"X\n"),
        "owned-ids": ("dir", "0o755", 1234, 5678),
        "owned-ids/b.txt": ("file", "0o644", 1234, 5678, b"B\n"),
        "owned-name": app_dir,
        "owned-name/a.txt": ("file", "0o644", 1000, 1000, b"A\n"),
        "renamed": ("file", "0o644", 0, 0, b"A\n"),
        "wild": root_dir,
        "wild/a.txt": ("file", "0o644", 0, 0, b"A\n"),
        "wild/b.txt": ("file", "0o644", 0, 0, b"B\n"),
        "x": root_dir,
    }
    for tag in ("gz", "bz2", "xz", "zst"):
        expected[f"x/{tag}"] = root_dir
        expected[f"x/{tag}/payload-{tag}"] = ("dir", "0o750", 0, 0)
        expected[f"x/{tag}/payload-{tag}/f.txt"] = ("file", "0o640", 7, 8, f"{tag}\n".encode())
    return expected


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, busybox_tar: Path) -> tuple[Path, Path]:  # noqa: F811
    """The store holding the built image ``files`` and the directory it was exported to."""
    require_root("builds run containers and mount overlays")
    base = tmp_path_factory.mktemp("build-files")
    store_root, context, exported = base / "store", base / "context", base / "exported"
    context.mkdir()
    _write_context(context)
    import_busybox(store_root, busybox_tar)
    status = kiln(store_root, "build", "-q", "-t", "files", "-o", f"type=local,dest={exported}", str(context))
    assert status == 0
    return store_root, exported


def test_filesystem_is_exactly_what_the_dockerfile_says(built: tuple[Path, Path]) -> None:
    _store_root, exported = built
    assert describe_tree(exported, skip=BUSYBOX_OWN) == _expected_tree()


def test_config_history_and_layer_count(built: tuple[Path, Path]) -> None:
    store_root, _exported = built
    with Store.open(store_root) as store:
        manifest, config = store.get_image("files")
    assert config["config"] == {
        "Cmd": ["sh"],
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "User": "root",
        "WorkingDir": "/home/app/work",
    }
    # The base layer, then one per RUN, COPY, ADD and WORKDIR: 16 of them; USER adds none.
    assert len(manifest["layers"]) == 17
    empty = [entry["created_by"] for entry in config["history"] if entry.get("empty_layer")]
    assert empty == ["USER app", "USER root"]
    assert config["history"][-1]["created_by"] == (
        "RUN /bin/sh -c rm -rf /gone /etc/removed /becomes && echo file > /becomes # buildkit"
    )


def test_deletions_are_whiteouts_in_the_last_layer(built: tuple[Path, Path]) -> None:
    """A deleted tree is one whiteout; a directory replaced by a file is just the file
    (unpacking a non-directory over a directory replaces it), in the writer's name order."""
    store_root, _exported = built
    with Store.open(store_root) as store:
        manifest, _config = store.get_image("files")
        blob = store.blobs.read_bytes(manifest["layers"][-1]["digest"])
    with tarfile.open(fileobj=io.BytesIO(blob)) as archive:
        entries = [(member.name, member.type, member.mode) for member in archive.getmembers()]
    assert entries == [
        ("becomes", tarfile.REGTYPE, 0o644),
        ("etc", tarfile.DIRTYPE, 0o755),
        ("etc/.wh.removed", tarfile.REGTYPE, 0o600),
        (".wh.gone", tarfile.REGTYPE, 0o600),
    ]
