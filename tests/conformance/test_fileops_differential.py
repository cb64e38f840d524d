"""The differential corpus's file-op cases, replayed on builder.fileops alone.

Every case of ``conformance/differential`` whose Dockerfile uses only FROM, COPY, ADD,
WORKDIR and USER (no RUN) is rebuilt here without the frontend or a container: the base's
tree is materialised from ``bases/<base>.json`` (placeholder bytes for its files), the
context is prepared with the corpus's own ``prepare_context.py``, each instruction becomes
one ``copy_into`` or ``make_workdir`` call, and the result is compared with the
``expected.json`` tree that BuildKit produced: every path the build added or changed (type,
mode, owner, content hash or link target), and no path more or less than expected. The
few version-sensitive paths are compared against current BuildKit, which the case notes
describe, rather than the old oracle.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from builder.context import BuildContext
from builder.errors import KilnError
from builder.fileops import copy_into, make_workdir, resolve_owner
from builder.graph import ContextSource, CopyOp, CopySource, MkdirOp, StageSource
from builder.source import SourceSpan
from tests.conftest import SHARED_DIR, require_root, require_shared

FILE_OP_KEYWORDS = {"FROM", "COPY", "ADD", "WORKDIR", "USER"}
CASE_PREFIXES = ("add-", "copy-", "dockerignore-", "tar-", "workdir-")
#: Paths where this oracle (BuildKit 0.8) differs from current BuildKit, and why.
VERSION_SENSITIVE = {"copy-escape-glob"}

Tree = dict[str, tuple[str, str, int, int, str]]


def _corpus() -> Path:
    return require_shared("conformance", "differential")


def _file_op_cases() -> list[str]:
    cases_dir = SHARED_DIR / "conformance" / "differential" / "cases"
    if not cases_dir.is_dir():
        return []
    names = []
    for case_dir in sorted(cases_dir.iterdir()):
        if not case_dir.name.startswith(CASE_PREFIXES):
            continue
        case = json.loads((case_dir / "case.json").read_text())
        keywords = {
            line.split()[0].upper() for line in _instructions(case_dir / "context" / case["dockerfile"])
        }
        if keywords <= FILE_OP_KEYWORDS:
            names.append(case_dir.name)
    return names


def _instructions(dockerfile: Path) -> list[str]:
    lines = dockerfile.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _restore_lost_symlinks(context: Path) -> None:
    """Turn back into symlinks the files a symlink-less copy of the corpus made of them.

    A checkout without symlink support writes a link as a small file holding its target.
    Such a file is recognised by its content: one line with no newline, naming another
    existing entry relative to the file's directory (never itself, never an ignore file).
    """
    for path in sorted(context.rglob("*")):
        if not path.is_file() or path.is_symlink() or path.name.endswith(".dockerignore"):
            continue
        if path.stat().st_size > 255:
            continue
        target = path.read_bytes().decode("utf-8", "replace")
        if not re.fullmatch(r"[\w./-]+", target) or target in (path.name, "."):
            continue
        if (path.parent / target).exists():
            path.unlink()
            os.symlink(target, path)


def _materialise(tree_json: Path, root: Path) -> None:
    """A base image's tree on disk: real dirs and links, placeholder files, modes, owners."""
    root.mkdir()
    for path, kind, mode, uid, gid, detail in json.loads(tree_json.read_text())["tree"]:
        target = root / path
        if kind == "d":
            target.mkdir()
        elif kind == "l":
            os.symlink(detail, target)
        elif kind == "f":
            target.write_bytes(b"placeholder")
        else:
            continue
        os.lchown(target, uid, gid)
        if kind != "l":
            os.chmod(target, int(mode, 8))


def _describe(root: Path) -> Tree:
    """``{path: (type, mode, uid, gid, detail)}`` as ``imagetree.py`` reports a tree."""
    tree: Tree = {}
    for directory, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            path = Path(directory) / name
            info = os.lstat(path)
            mode = oct(stat.S_IMODE(info.st_mode))[2:]
            if stat.S_ISLNK(info.st_mode):
                kind, detail = "l", os.readlink(path)
            elif stat.S_ISDIR(info.st_mode):
                kind, detail = "d", ""
            else:
                kind, detail = "f", hashlib.sha256(path.read_bytes()).hexdigest()
            tree[str(path.relative_to(root))] = (kind, mode, info.st_uid, info.st_gid, detail)
    return tree


def _words(arguments: str) -> list[str]:
    """Whitespace-split words; double quotes removed (enough for these Dockerfiles)."""
    return [
        word[1:-1] if len(word) >= 2 and word[0] == word[-1] == '"' else word for word in arguments.split()
    ]


class _Replay:
    """Applies one case's instructions, stage by stage, to directories under ``work``."""

    def __init__(self, corpus: Path, context: Path, dockerfile: Path, work: Path) -> None:
        self.corpus, self.context, self.work = corpus, context, work
        self.build_context = BuildContext.open(context, dockerfile)
        self.stages: list[Path] = []
        self.workdir, self.user = "/", ""

    def run(self, instructions: list[str]) -> Path:
        for number, line in enumerate(instructions, start=1):
            keyword, _, arguments = line.partition(" ")
            span = SourceSpan("Dockerfile", number, number, text=line)
            getattr(self, f"_{keyword.lower()}")(_words(arguments), line, span)
        return self.stages[-1]

    def _from(self, words: list[str], line: str, span: SourceSpan) -> None:
        root = self.work / f"stage{len(self.stages)}"
        base = words[0].split(":")[0]
        if base == "scratch":
            root.mkdir()
        else:
            _materialise(self.corpus / "bases" / f"{'debian' if base == 'debian' else 'busybox'}.json", root)
        self.stages.append(root)
        self.workdir, self.user = "/", ""

    def _user(self, words: list[str], line: str, span: SourceSpan) -> None:
        self.user = words[0]

    def _workdir(self, words: list[str], line: str, span: SourceSpan) -> None:
        self.workdir = posixpath.join(self.workdir, words[0])
        op = MkdirOp(location=span, created_by=line, path=self.workdir, user=self.user)
        make_workdir(op, dest_root=self.stages[-1])

    def _add(self, words: list[str], line: str, span: SourceSpan) -> None:
        self._copy(words, line, span, unpack=True)

    def _copy(self, words: list[str], line: str, span: SourceSpan, *, unpack: bool = False) -> None:
        flags = {
            word[2:].partition("=")[0]: word.partition("=")[2] for word in words if word.startswith("--")
        }
        *sources, dest = [word for word in words if not word.startswith("--")]
        if not dest.startswith("/"):
            dest = posixpath.join(self.workdir, dest) + (
                "/" if dest.endswith("/") or dest in (".", "") else ""
            )
        source_root: Path = self.context
        source: CopySource = ContextSource()
        if "from" in flags:
            source_root, source = self.stages[int(flags["from"])], StageSource(int(flags["from"]))
        chown_spec, chmod = flags.get("chown", ""), flags.get("chmod", "")
        op = CopyOp(span, line, source, tuple(sources), dest, chown=chown_spec, chmod=chmod, unpack=unpack)
        chown = resolve_owner(op.chown, self.stages[-1]) if op.chown else None
        context = self.build_context if isinstance(source, ContextSource) else None
        copy_into(op, dest_root=self.stages[-1], source_root=source_root, context=context, chown=chown)


def _expected_current(name: str, expected: Tree, context: Path) -> Tree:
    """The oracle's tree, corrected where current BuildKit is known to differ."""
    if name == "copy-escape-glob":  # escapes are kept: only the literal directories match
        expected = dict(expected)
        for dest, literal in (
            ("app4/file.txt", "app/n?pe/file.txt"),
            ("app5/file.txt", "app/st*uv/file.txt"),
        ):
            kind, _, uid, gid, _ = expected[dest]
            source = context / literal
            mode = oct(stat.S_IMODE(os.stat(source).st_mode))[2:]
            expected[dest] = (kind, mode, uid, gid, hashlib.sha256(source.read_bytes()).hexdigest())
    return expected


@pytest.mark.parametrize("name", _file_op_cases())
def test_case(name: str, tmp_path: Path) -> None:
    require_root("prepares contexts with owners and writes owners into the rootfs")
    corpus = _corpus()
    case_dir = corpus / "cases" / name
    case = json.loads((case_dir / "case.json").read_text())
    context = tmp_path / "ctx"
    subprocess.run([sys.executable, corpus / "prepare_context.py", case_dir, context], check=True)
    _restore_lost_symlinks(context)
    dockerfile = context / case["dockerfile"]
    replay = _Replay(corpus, context, dockerfile, tmp_path)
    expected_json = json.loads((case_dir / "expected.json").read_text())
    if case["expect"] == "failure":
        with pytest.raises(KilnError, match=re.escape("not found")):
            replay.run(_instructions(dockerfile))
        return
    result = _describe(replay.run(_instructions(dockerfile)))
    expected: Tree = {
        path: (kind, mode, uid, gid, detail) for path, kind, mode, uid, gid, detail in expected_json["tree"]
    }
    expected = _expected_current(name, expected, context)
    base_name = "debian" if "debian" in dockerfile.read_text() else "busybox"
    base_files = {
        entry[0] for entry in json.loads((corpus / "bases" / f"{base_name}.json").read_text())["tree"]
    }
    assert sorted(result) == sorted(expected)
    changed = {path: value for path, value in result.items() if path not in base_files or value[0] != "f"}
    assert changed == {path: value for path, value in expected.items() if path in changed}
    kept_files = {path: value[:4] for path, value in result.items() if path in base_files}
    assert kept_files == {path: expected[path][:4] for path in kept_files}
