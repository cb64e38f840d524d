"""``kiln build --secret`` and ``RUN --mount=type=secret``: available to the RUN, nowhere else.

The leak test builds with a secret used as a file and as an env variable, then reads every
file of the store (blobs decompressed, the metadata DB, snapshots, cache mounts) and the
build's own output, and finds the value in none of them.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
from pathlib import Path

import pytest
import zstandard

from tests.fixtures.context_files import make_tree
from tests.fixtures.kiln_cli import kiln

pytestmark = [pytest.mark.root, pytest.mark.slow]

SECRET = "s3cr3t-VALUE-0f-kiln"

DOCKERFILE = """\
FROM busybox
RUN --mount=type=secret,id=tok sha256sum < /run/secrets/tok | cut -c1-64 > /file-digest \\
    && stat -c '%a %u %g' /run/secrets/tok > /default-perms
RUN --mount=type=secret,id=tok,target=/sec/t,mode=0440,uid=1000,gid=1000 \\
    stat -c '%a %u %g' /sec/t > /custom-perms && cat /sec/t | wc -c > /length
RUN --mount=type=secret,id=envtok,env=TOKEN,required printf %s "$TOKEN" | sha256sum | cut -c1-64 > /env-digest
RUN --mount=type=secret,id=absent ls /run/secrets > /absent-listing 2>&1 || true
"""


def _decompressed(data: bytes) -> bytes:
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    if data[:4] == b"\x28\xb5\x2f\xfd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data


def _files_holding(root: Path, needle: bytes) -> list[str]:
    found: list[str] = []
    for directory, _dirs, files in os.walk(root):
        for name in files:
            path = Path(directory) / name
            if path.is_symlink() or not path.is_file():
                continue
            data = path.read_bytes()
            if needle in data or needle in _decompressed(data):
                found.append(str(path.relative_to(root)))
    return found


def _export(store: Path, tag: str, dest: Path) -> None:
    assert kiln(store, "save", "-o", str(dest), tag) == 0


@pytest.fixture
def built(tmp_path: Path, busybox_store: Path, capfd: pytest.CaptureFixture[str]) -> tuple[Path, Path, str]:
    context = make_tree(tmp_path / "ctx", {"Dockerfile": DOCKERFILE})
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(SECRET)
    os.environ["KILN_TEST_SECRET"] = SECRET
    try:
        status = kiln(
            busybox_store,
            "build",
            "-t",
            "secret-test",
            "--secret",
            f"id=tok,src={secret_file}",
            "--secret",
            "id=envtok,env=KILN_TEST_SECRET",
            "-o",
            f"type=local,dest={tmp_path / 'out'}",
            str(context),
        )
    finally:
        del os.environ["KILN_TEST_SECRET"]
    output = capfd.readouterr()
    assert status == 0, output.err
    return busybox_store, tmp_path / "out", output.out + output.err


def test_secret_is_mounted_only_during_its_run(built: tuple[Path, Path, str]) -> None:
    _store, out, _log = built
    assert (out / "default-perms").read_text() == "400 0 0\n"
    assert (out / "custom-perms").read_text() == "440 1000 1000\n"
    assert (out / "length").read_text().strip() == str(len(SECRET))
    digest = hashlib.sha256(SECRET.encode()).hexdigest() + "\n"
    assert (out / "file-digest").read_text() == digest
    assert (out / "env-digest").read_text() == digest
    assert (out / "absent-listing").read_text().startswith("ls: /run/secrets")
    assert not (out / "run" / "secrets").exists()
    assert not (out / "sec").exists()


def test_secret_value_is_nowhere_in_the_store(built: tuple[Path, Path, str], tmp_path: Path) -> None:
    store, out, log = built
    needle = SECRET.encode()
    assert _files_holding(store, needle) == []
    assert _files_holding(out, needle) == []
    assert SECRET not in log
    archive = tmp_path / "image.tar"
    _export(store, "secret-test", archive)
    with tarfile.open(archive) as outer:
        for member in outer.getmembers():
            handle = outer.extractfile(member)
            if handle is not None:
                assert needle not in _decompressed(handle.read()), member.name
    assert kiln(store, "inspect", "secret-test") == 0


def test_missing_required_secret_names_the_id(
    tmp_path: Path,
    busybox_store: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    dockerfile = "FROM busybox\nRUN --mount=type=secret,id=npmrc,required=true cat /run/secrets/npmrc\n"
    context = make_tree(tmp_path / "ctx", {"Dockerfile": dockerfile})
    status = kiln(busybox_store, "build", str(context))
    assert status != 0
    assert "secret 'npmrc' is required but was not provided" in capfd.readouterr().err


def test_secret_flag_fields() -> None:
    from builder.errors import UsageError
    from builder.secrets import SecretSource, parse_secret_flag

    assert parse_secret_flag("id=a,src=/x") == SecretSource("a", file=Path("/x"))
    assert parse_secret_flag("id=a,source=/x,type=file") == SecretSource("a", file=Path("/x"))
    assert parse_secret_flag("id=a,env=VAR") == SecretSource("a", env="VAR")
    assert parse_secret_flag("id=a,type=env,src=VAR") == SecretSource("a", env="VAR")
    with pytest.raises(UsageError, match="id is required"):
        parse_secret_flag("src=/x")
    with pytest.raises(UsageError, match="unknown field 'colour'"):
        parse_secret_flag("id=a,colour=red")
