"""WORKDIR's directories and the owner rules shared by --chown and WORKDIR."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from builder.errors import BuildError
from builder.exec.users import UserLookupError
from builder.fileops import make_workdir, resolve_owner
from builder.graph import MkdirOp
from tests.conftest import require_root
from tests.fixtures.context_files import make_tree
from tests.unit.builder.fileops.helpers import SPAN, owner

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "daemon:x:1:1:daemon:/usr/sbin:/bin/sh\n"
    "lp:x:7:7:lp:/var/spool/lpd:/bin/sh\n"
)
GROUP = "root:x:0:\ndaemon:x:1:\nadm:x:4:\nlp:x:7:\nmail:x:8:\n"


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = make_tree(tmp_path / "rootfs", {"etc/passwd": PASSWD, "etc/group": GROUP, "tmp/": None})
    os.symlink("/tmp", root / "scratch")
    return root


def workdir(path: str, user: str = "") -> MkdirOp:
    return MkdirOp(location=SPAN, created_by=f"WORKDIR {path}", path=path, user=user)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("1:2", (1, 2)),
        ("1", (1, 1)),
        ("1000", (1000, 1000)),
        ("1:adm", (1, 4)),
        ("lp:adm", (7, 4)),
        ("2:mail", (2, 8)),
        ("lp", (7, 7)),
        ("daemon", (1, 1)),
    ],
)
def test_owner_rules(rootfs: Path, spec: str, expected: tuple[int, int]) -> None:
    assert resolve_owner(spec, rootfs) == expected


def test_unknown_owner_name_is_an_error(rootfs: Path) -> None:
    with pytest.raises(UserLookupError, match="unable to find user nobody-here"):
        resolve_owner("nobody-here", rootfs)


def test_workdir_creates_missing_dirs_owned_by_the_user(rootfs: Path) -> None:
    require_root()
    created = make_workdir(workdir("/usr/local/app", user="daemon"), dest_root=rootfs)
    assert created == [rootfs / "usr", rootfs / "usr/local", rootfs / "usr/local/app"]
    assert [owner(path) for path in created] == [(1, 1)] * 3
    assert [oct(os.stat(path).st_mode & 0o7777) for path in created] == ["0o755"] * 3


def test_existing_workdir_is_untouched_and_the_user_not_looked_up(rootfs: Path) -> None:
    before = os.stat(rootfs / "tmp")
    assert make_workdir(workdir("/tmp/", user="no-such-user"), dest_root=rootfs) == []
    assert os.stat(rootfs / "tmp").st_mode == before.st_mode


def test_workdir_with_an_unknown_user_fails_when_it_must_create(rootfs: Path) -> None:
    with pytest.raises(BuildError, match="unable to find user no-such-user"):
        make_workdir(workdir("/new", user="no-such-user"), dest_root=rootfs)
    assert not (rootfs / "new").exists()


def test_workdir_follows_symlinks_inside_the_root(rootfs: Path) -> None:
    make_workdir(workdir("/scratch/kiln-workdir-confinement"), dest_root=rootfs)
    assert (rootfs / "tmp/kiln-workdir-confinement").is_dir()
    assert not Path("/tmp/kiln-workdir-confinement").exists()


def test_workdir_through_a_file_fails(rootfs: Path) -> None:
    with pytest.raises(BuildError, match="/etc/passwd exists and is not a directory"):
        make_workdir(workdir("/etc/passwd/x"), dest_root=rootfs)
