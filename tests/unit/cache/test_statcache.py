"""The stat cache's rows: one per directory, written only when they change, forgotten
when their directory is gone."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from builder.context import BuildContext
from cache.contenthash import ContextHasher
from cache.statcache import DirRecord, StatCache
from tests.fixtures.context_files import write_old_file, write_old_files


@pytest.fixture
def context_root(tmp_path: Path) -> Path:
    return write_old_files(
        tmp_path / "ctx",
        {
            "app/main.py": "print(1)\n",
            "app/old.py": "print(0)\n",
            "app/gone/x.txt": "x\n",
            "docs/index.md": "docs\n",
        },
    )


@pytest.fixture
def cache_path(tmp_path: Path) -> Path:
    path = tmp_path / "store" / "contenthash.db"
    StatCache(path).close()  # the table, so that the triggers below can watch it
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE writes (dir TEXT, action TEXT)")
        db.execute(
            "CREATE TRIGGER on_insert AFTER INSERT ON tree_dirs"
            " BEGIN INSERT INTO writes VALUES (new.dir, 'write'); END"
        )
        db.execute(
            "CREATE TRIGGER on_delete AFTER DELETE ON tree_dirs"
            " BEGIN INSERT INTO writes VALUES (old.dir, 'delete'); END"
        )
    return path


def digest(cache_path: Path, root: Path, *paths: str, **options: object) -> str:
    with ContextHasher(cache_path) as hasher:
        return hasher.digest_sources(BuildContext.open(root), paths, **options).digest  # type: ignore[arg-type]


def writes(cache_path: Path) -> list[tuple[str, str]]:
    """The row writes since the last call, as ``(dir, action)`` (a row replaced by
    ``INSERT OR REPLACE`` shows as one write: SQLite fires no delete trigger for it)."""
    with sqlite3.connect(cache_path) as db:
        rows = db.execute("SELECT dir, action FROM writes ORDER BY rowid").fetchall()
        db.execute("DELETE FROM writes")
    return [(os.fsdecode(directory), action) for directory, action in rows]


def remembered(cache_path: Path, root: Path) -> dict[str, list[str]]:
    """Each remembered directory's names."""
    cache = StatCache(cache_path)
    try:
        tree = cache.tree(root.resolve())
        found: dict[str, list[str]] = {}
        for directory in tree.directories():
            record = tree.directory(directory)
            assert isinstance(record, DirRecord)
            found[directory] = record.names
        return found
    finally:
        cache.close()


def test_one_row_per_directory_written_once(cache_path: Path, context_root: Path) -> None:
    digest(cache_path, context_root, ".")
    assert sorted(writes(cache_path)) == [
        ("", "write"),
        ("app", "write"),
        ("app/gone", "write"),
        ("docs", "write"),
    ]
    digest(cache_path, context_root, ".")
    assert writes(cache_path) == []


def test_one_changed_file_rewrites_only_its_directory(cache_path: Path, context_root: Path) -> None:
    before = digest(cache_path, context_root, ".")
    writes(cache_path)
    write_old_file(context_root, "app/main.py", "print(2)\n")
    assert digest(cache_path, context_root, ".") != before
    assert writes(cache_path) == [("app", "write")]


def test_deleted_files_and_directories_are_forgotten_after_a_whole_walk(
    cache_path: Path, context_root: Path
) -> None:
    digest(cache_path, context_root, ".")
    writes(cache_path)
    os.unlink(context_root / "app/old.py")
    shutil.rmtree(context_root / "app/gone")
    digest(cache_path, context_root, ".")
    assert sorted(writes(cache_path)) == [("", "write"), ("app", "write"), ("app/gone", "delete")]
    assert remembered(cache_path, context_root) == {
        "": ["app", "docs"],
        "app": ["main.py"],
        "docs": ["index.md"],
    }


def test_a_partial_walk_forgets_only_inside_the_directories_it_met(
    cache_path: Path, context_root: Path
) -> None:
    digest(cache_path, context_root, ".")
    os.unlink(context_root / "app/old.py")
    shutil.rmtree(context_root / "docs")
    digest(cache_path, context_root, "app/main.py", "app")
    assert remembered(cache_path, context_root) == {
        "": ["app", "docs"],
        "app": ["gone", "main.py"],
        "app/gone": ["x.txt"],
        "docs": ["index.md"],
    }


def test_ignored_directories_are_forgotten_after_a_whole_walk(cache_path: Path, context_root: Path) -> None:
    digest(cache_path, context_root, ".")
    write_old_file(context_root, ".dockerignore", "docs\n")
    digest(cache_path, context_root, ".")
    assert "docs" not in remembered(cache_path, context_root)


def test_a_whole_walk_with_exclude_forgets_nothing(cache_path: Path, context_root: Path) -> None:
    digest(cache_path, context_root, ".")
    shutil.rmtree(context_root / "app/gone")
    digest(cache_path, context_root, ".", exclude=["docs"])
    assert "app/gone" in remembered(cache_path, context_root)


@pytest.mark.parametrize("damage", ["not-a-database", "torn-pages"])
def test_a_damaged_cache_is_started_afresh(tmp_path: Path, context_root: Path, damage: str) -> None:
    """It is only a cache, written without syncs: a file SQLite finds damaged (a machine
    crashed mid-write) is deleted and made anew, and the build's digests are the same."""
    path = tmp_path / "store" / "contenthash.db"
    expected = digest(path, context_root, ".")
    if damage == "not-a-database":
        path.write_bytes(b"not a database at all " * 500)
    else:
        with path.open("r+b") as file:  # the header stands, the pages behind it are garbage
            file.seek(4096)
            file.write(os.urandom(path.stat().st_size - 4096))
    assert digest(path, context_root, ".") == expected
    assert remembered(path, context_root)["app"] == ["gone", "main.py", "old.py"]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
