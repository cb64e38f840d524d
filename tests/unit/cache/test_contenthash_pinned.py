"""Digests of a small fixed tree, pinned to the values the first implementation computed.

A cache key that changes silently makes every user's next build a full miss; a change of
key format must be deliberate, and show here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from builder.context import BuildContext
from cache.contenthash import ContextHasher

OLD = 1_600_000_000  # an mtime well outside the racy window

FILES = {
    ".dockerignore": "app/build\n**/*.tmp\nlogs\n!logs/keep.log\n",
    "README": "readme\n",
    "app/main.py": "print(1)\n",
    "app/util.py": "X = 1\n",
    "app/notes.md": "notes\n",
    "app/build/out.o": "obj\n",
    "app/cache.tmp": "tmp\n",
    "app/sub/deep/data.json": '{"a": 1}\n',
    "app/sub/zeta.txt": "z\n",
    "app/sub/\u00c9clair.txt": "accent\n",
    "logs/keep.log": "kept\n",
    "logs/drop.log": "dropped\n",
}


@pytest.fixture
def fixed_root(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    for relative, content in FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        path.chmod(0o755 if relative.endswith(".py") and "main" in relative else 0o644)
    (root / "app/empty").mkdir()
    os.symlink("main.py", root / "app/link")
    os.symlink("../README", root / "app/sub/up")
    for directory, _subdirs, files in os.walk(root):
        os.chmod(directory, 0o755)
        for name in files:
            os.utime(os.path.join(directory, name), (OLD, OLD), follow_symlinks=False)
    return root


CASES: list[tuple[list[str], dict[str, object], str]] = [
    (["."], {}, "sha256:ef4e4cfba1777a633236e308368eda751bdae9509da44c6514d0197f6cc2fad8"),
    (["app"], {}, "sha256:17c28447192eddb980a6b648188526cd7ca245eb1786e8ba1ed9967baf5feb6f"),
    (["app/*.py", "README"], {}, "sha256:5106386da90ecfcc58237d5bdedb1813022675ccf52919774167e6af6730ee54"),
    (
        ["app"],
        {"exclude": ["*.md", "sub/deep"]},
        "sha256:0066708b1c489135fd089dc3473c7a8dea8b3296e34989c291a81f7c079cb259",
    ),
    (
        ["app/./sub/*"],
        {"parents": True},
        "sha256:cfdf3a0b18af0dc0eaa6b7de7b00f1d7151e4e9eb137a006aed130971a9a6b1d",
    ),
    (
        ["logs", "nope", "*.none"],
        {},
        "sha256:e253eb3fd787627cfe416721a2f84c325f9498a26f32fa6a8bd1c265ed5126a1",
    ),
    (["app/link"], {}, "sha256:4c26e25cf03a5d6c0fab5898183bd90c4131715f8271fbb3926b6628a2cbbbde"),
]


@pytest.mark.parametrize(("paths", "options", "expected"), CASES)
def test_digests_are_pinned(
    tmp_path: Path, fixed_root: Path, paths: list[str], options: dict[str, object], expected: str
) -> None:
    cache_path = tmp_path / "store" / "contenthash.db"
    for _ in range(2):  # once hashing every file, once from the stat cache
        with ContextHasher(cache_path) as hasher:
            selection = hasher.digest_sources(BuildContext.open(fixed_root), paths, **options)  # type: ignore[arg-type]
        assert selection.digest == expected


def test_entry_digests_of_the_whole_context_are_pinned(tmp_path: Path, fixed_root: Path) -> None:
    with ContextHasher(tmp_path / "store" / "contenthash.db") as hasher:
        selection = hasher.digest_sources(BuildContext.open(fixed_root), ["."])
    assert all(len(digest) == 32 for digest in selection.files.values())
    # The first 16 hex digits, pinned when entry digests were that long.
    assert {name: digest[:16] for name, digest in selection.files.items()} == {
        ".": "54c0f5f4939e7165",
        ".dockerignore": "0cf856a020156479",
        "README": "6c013e6bd8526d78",
        "app": "351b781bcb337fe8",
        "app/empty": "c91bef20c1a55eaa",
        "app/link": "d9cbb86adf0fd8de",
        "app/main.py": "1fba8f5611b33f66",
        "app/notes.md": "a7c9bf1b5b1a6d29",
        "app/sub": "2d59627978132418",
        "app/sub/deep": "d4f1265ec95b174a",
        "app/sub/deep/data.json": "9d280544264219b9",
        "app/sub/up": "0083ddde89c7e16a",
        "app/sub/zeta.txt": "4460ea1e07ea79cb",
        "app/sub/\u00c9clair.txt": "180847b54a26b7f8",
        "app/util.py": "05037e930af0f7f8",
        "logs": "211780449466e635",
        "logs/keep.log": "a849091a3776e0e3",
    }
    assert list(selection.files)[-4:] == ["app/sub/\u00c9clair.txt", "app/util.py", "logs", "logs/keep.log"]


@pytest.mark.skipif(os.geteuid() != 0, reason="owners count: the files must belong to root")
def test_tree_digest_with_owners_is_pinned(tmp_path: Path, fixed_root: Path) -> None:
    with ContextHasher(tmp_path / "store" / "contenthash.db") as hasher:
        digest = hasher.digest_tree(fixed_root, ["app"]).digest
    assert digest == "sha256:6c73292d8e68d433f7866be380ad7b88a14175ccebe21196b227eb527da44607"
