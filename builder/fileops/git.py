"""``ADD <git repository>``: resolve a ref to a commit, and check that commit out.

The commit (not the ref) is what a cache key holds, so a branch that moves gives a new key
and a tag or branch that stays put keeps hitting. The checkout is shallow: one fetch of the
one ref, verified against the commit the key was made from. ``.git`` is dropped unless
``--keep-git-dir``, as in BuildKit; ``subdir`` (``#ref:subdir``) selects what is copied.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from builder.errors import BuildError
from builder.graph import GitSource

_FULL_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
# A fetch never asks for a password or an ssh host key: a build is not interactive.
_QUIET_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_SSH_COMMAND": "ssh -o BatchMode=yes"}


def _git(args: Sequence[str], *, cwd: Path | None = None) -> str:
    if shutil.which("git") is None:
        raise BuildError("ADD of a git repository needs git installed on this machine")
    env = {**os.environ, **_QUIET_ENV}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BuildError(f"git {args[0]} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def resolve_commit(source: GitSource) -> str:
    """The commit ``source.ref`` names now (``HEAD`` when empty); a full sha is itself."""
    if _FULL_SHA.match(source.ref):
        return source.ref
    wanted = source.ref or "HEAD"
    # Every ref: a pattern would hide a tag's peeled entry (refs/tags/v1^{}).
    listing = _git(["ls-remote", "--", source.url])
    by_name: dict[str, str] = {}
    for line in listing.splitlines():
        commit, _, name = line.partition("\t")
        by_name[name] = commit
    # A tag's peeled entry (^{}) is the commit; then an exact name, a tag, a branch.
    for name in (
        f"refs/tags/{wanted}^{{}}",
        wanted,
        f"refs/tags/{wanted}",
        f"refs/heads/{wanted}",
    ):
        if name in by_name:
            return by_name[name]
    raise BuildError(f"git ref {wanted!r} not found in {source.url}")


def checkout(source: GitSource, commit: str, dest: Path) -> Path:
    """Fetch ``commit`` of ``source`` into ``dest`` and return the directory to copy from."""
    dest.mkdir(parents=True, exist_ok=True)
    _git(["init", "--quiet", str(dest)])
    _git(["remote", "add", "origin", source.url], cwd=dest)
    fetched = source.ref if source.ref and not _FULL_SHA.match(source.ref) else commit
    if not source.ref:
        fetched = "HEAD"
    _git(["fetch", "--quiet", "--depth=1", "origin", fetched], cwd=dest)
    got = _git(["rev-parse", "FETCH_HEAD^{commit}"], cwd=dest).strip()
    if got != commit:
        raise BuildError(f"git {source.url}#{source.ref}: fetched {got}, expected {commit} (the ref moved)")
    _git(["-c", "advice.detachedHead=false", "checkout", "--quiet", commit], cwd=dest)
    _git(["submodule", "update", "--init", "--recursive", "--depth=1", "--quiet"], cwd=dest)
    if not source.keep_git_dir:
        shutil.rmtree(dest / ".git")
    if not source.subdir:
        return dest
    selected = (dest / source.subdir.strip("/")).resolve()
    if not selected.is_relative_to(dest.resolve()) or not selected.is_dir():
        raise BuildError(f"git {source.url}: {source.subdir!r} is not a directory of commit {commit}")
    return selected
