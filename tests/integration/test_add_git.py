"""``ADD git://host/repo.git#ref:subdir`` against a local ``git daemon`` on 127.0.0.1: the
checked-out files, ``--keep-git-dir``, and the commit (not the ref) in the cache key."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from builder.fileops import git as git_ops
from tests.conftest import require_tool
from tests.fixtures.context_files import make_tree
from tests.fixtures.kiln_cli import kiln

pytestmark = [pytest.mark.root, pytest.mark.slow]

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "HOME": "/nonexistent",
    "PATH": "/usr/bin:/bin",
}


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def served_repo(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A work tree (to commit to), pushed to a bare repo served by git daemon: (url, work)."""
    require_tool("git")
    work = tmp_path / "work"
    (work / "src").mkdir(parents=True)
    (work / "src" / "lib.py").write_text("VERSION = 1\n")
    (work / "README").write_text("readme\n")
    _git(tmp_path, "init", "--quiet", "-b", "main", str(work))
    _git(work, "add", ".")
    _git(work, "commit", "--quiet", "-m", "one")
    _git(work, "tag", "-a", "v1", "-m", "v1")
    served = tmp_path / "served"
    served.mkdir()
    _git(tmp_path, "clone", "--quiet", "--bare", str(work), str(served / "repo.git"))
    port = _free_port()
    daemon = subprocess.Popen(
        [
            "git",
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--listen=127.0.0.1",
            f"--port={port}",
            f"--base-path={served}",
            str(served),
        ],
        env=GIT_ENV,
    )
    try:
        for _ in range(50):
            with socket.socket() as client:
                if client.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield f"git://127.0.0.1:{port}/repo.git", work
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


def _push(work: Path, served_git: Path, content: str) -> str:
    (work / "src" / "lib.py").write_text(content)
    _git(work, "commit", "--quiet", "-am", "next")
    _git(work, "push", "--quiet", str(served_git), "main")
    return _git(work, "rev-parse", "HEAD")


def test_add_git_repository(
    served_repo: tuple[str, Path],
    tmp_path: Path,
    busybox_store: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, work = served_repo
    dockerfile = (
        "FROM busybox\n"
        f"ADD {url}#v1:src /tagged-src/\n"
        f"ADD {url}#main /whole/\n"
        f"ADD --keep-git-dir=true {url}#main /kept/\n"
        "RUN cat /whole/src/lib.py > /seen\n"
    )
    context = make_tree(tmp_path / "ctx", {"Dockerfile": dockerfile})

    def build(name: str) -> str:
        out = tmp_path / name
        status = kiln(
            busybox_store, "build", "--progress", "plain", "-o", f"type=local,dest={out}", str(context)
        )
        err = capfd.readouterr().err
        assert status == 0, err
        return err

    build("first")
    first = tmp_path / "first"
    assert sorted(path.name for path in (first / "whole").iterdir()) == ["README", "src"]
    assert (first / "whole" / "src" / "lib.py").read_text() == "VERSION = 1\n"
    assert sorted(path.name for path in (first / "tagged-src").iterdir()) == ["lib.py"]
    assert (first / "kept" / ".git").is_dir()

    log = build("again")
    assert "(4/4 steps cached)" in log

    _push(work, tmp_path / "served" / "repo.git", "VERSION = 2\n")
    asked: list[str] = []
    real_git = git_ops._git

    def counting_git(args: Sequence[str], *, cwd: Path | None = None) -> str:
        asked.append(args[0])
        return real_git(args, cwd=cwd)

    monkeypatch.setattr(git_ops, "_git", counting_git)
    log = build("moved")
    # Each ref is asked of the remote once a build: the key and the checkout share it.
    assert asked.count("ls-remote") == 2
    moved = tmp_path / "moved"
    assert (moved / "seen").read_text() == "VERSION = 2\n"
    # The tag did not move: its ADD (the first step) is still cached; main moved.
    assert (moved / "tagged-src" / "lib.py").read_text() == "VERSION = 1\n"
    assert "(1/4 steps cached)" in log
