from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from builder.context import BuildContext
from cache.contenthash import ContextHasher, SourceDigest
from cache.treewalk import TreeWalk
from tests.fixtures.context_files import OLD_MTIME, write_old_file, write_old_files


@pytest.fixture
def context_root(tmp_path: Path) -> Path:
    return write_old_files(
        tmp_path / "ctx",
        {
            "app/main.py": "print(1)\n",
            "app/util.py": "X = 1\n",
            "app/notes.md": "notes\n",
            "app/build/out.o": "obj\n",
            "README": "readme\n",
            ".dockerignore": "app/build\n**/*.tmp\n",
        },
    )


@pytest.fixture
def hasher(tmp_path: Path) -> ContextHasher:
    return ContextHasher(tmp_path / "store" / "contenthash.db")


def digest(hasher: ContextHasher, root: Path, *paths: str, **options: object) -> SourceDigest:
    return hasher.digest_sources(BuildContext.open(root), paths, **options)  # type: ignore[arg-type]


def test_same_content_same_digest(hasher: ContextHasher, context_root: Path) -> None:
    assert digest(hasher, context_root, "app").digest == digest(hasher, context_root, "app").digest


def test_selected_files_are_listed_ignored_ones_are_not(hasher: ContextHasher, context_root: Path) -> None:
    assert list(digest(hasher, context_root, "app").files) == [
        "app",
        "app/main.py",
        "app/notes.md",
        "app/util.py",
    ]


def test_editing_a_selected_file_changes_the_digest(hasher: ContextHasher, context_root: Path) -> None:
    before = digest(hasher, context_root, "app")
    write_old_file(context_root, "app/main.py", "print(2)\n")
    after = digest(hasher, context_root, "app")
    assert after.digest != before.digest
    changed = [path for path in after.files if after.files[path] != before.files[path]]
    assert changed == ["app/main.py"]


@pytest.mark.parametrize(
    "edit",
    [
        "app/build/out.o",  # ignored by .dockerignore
        "README",  # not selected by the COPY
        "app/new.tmp",  # a new ignored file
    ],
)
def test_editing_an_ignored_or_unselected_file_changes_nothing(
    hasher: ContextHasher, context_root: Path, edit: str
) -> None:
    before = digest(hasher, context_root, "app").digest
    write_old_file(context_root, edit, "changed\n")
    assert digest(hasher, context_root, "app").digest == before


def test_mode_and_symlink_target_count(hasher: ContextHasher, context_root: Path) -> None:
    before = digest(hasher, context_root, "app").digest
    (context_root / "app/util.py").chmod(0o755)
    after_chmod = digest(hasher, context_root, "app").digest
    assert after_chmod != before
    os.symlink("main.py", context_root / "app/link")
    with_link = digest(hasher, context_root, "app").digest
    os.unlink(context_root / "app/link")
    os.symlink("util.py", context_root / "app/link")
    assert digest(hasher, context_root, "app").digest not in (after_chmod, with_link)


def test_mtime_alone_does_not_count(hasher: ContextHasher, context_root: Path) -> None:
    before = digest(hasher, context_root, "app").digest
    os.utime(context_root / "app/main.py", (OLD_MTIME + 100, OLD_MTIME + 100))
    assert digest(hasher, context_root, "app").digest == before


def test_wildcards_and_exclude_select_like_the_copier(hasher: ContextHasher, context_root: Path) -> None:
    selection = digest(hasher, context_root, "app/*.py")
    assert list(selection.files) == ["app/main.py", "app/util.py"]
    excluded = digest(hasher, context_root, "app", exclude=["*.md"])
    assert list(excluded.files) == ["app", "app/main.py", "app/util.py"]
    before = excluded.digest
    write_old_file(context_root, "app/notes.md", "other notes\n")
    assert digest(hasher, context_root, "app", exclude=["*.md"]).digest == before


def test_missing_source_is_marked(hasher: ContextHasher, context_root: Path) -> None:
    assert dict(digest(hasher, context_root, "nope").files) == {"nope": "missing"}
    assert dict(digest(hasher, context_root, "*.nothing").files) == {"*.nothing": "no match"}


def test_named_symlink_is_followed(hasher: ContextHasher, context_root: Path) -> None:
    os.symlink("app/main.py", context_root / "entry")
    before = digest(hasher, context_root, "entry").digest
    write_old_file(context_root, "app/main.py", "print(3)\n")
    assert digest(hasher, context_root, "entry").digest != before


def test_stat_cache_avoids_reading_unchanged_files(tmp_path: Path, context_root: Path) -> None:
    cache_path = tmp_path / "store" / "contenthash.db"
    with ContextHasher(cache_path) as first:
        expected = digest(first, context_root, "app").digest
        assert first.files_read == 3
    with ContextHasher(cache_path) as second:
        assert digest(second, context_root, "app").digest == expected
        assert second.files_read == 0
        write_old_file(context_root, "app/util.py", "X = 2\n")
        digest(second, context_root, "app")
        assert second.files_read == 1


def test_racily_new_files_are_read_again(tmp_path: Path, context_root: Path) -> None:
    (context_root / "app/main.py").write_text("fresh\n")  # mtime is now
    cache_path = tmp_path / "store" / "contenthash.db"
    with ContextHasher(cache_path) as first:
        digest(first, context_root, "app")
    with ContextHasher(cache_path) as second:
        digest(second, context_root, "app")
        assert second.files_read == 1


def test_digest_tree_counts_owners(hasher: ContextHasher, tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    write_old_file(root, "etc/app.conf", "a=1\n")
    assert list(hasher.digest_tree(root, ["etc"]).files) == ["etc", "etc/app.conf"]
    if os.geteuid() == 0:
        before = hasher.digest_tree(root, ["etc"]).digest
        os.chown(root / "etc/app.conf", 1000, 1000)
        assert hasher.digest_tree(root, ["etc"]).digest != before


def test_parents_keep_the_path_below_the_pivot(hasher: ContextHasher, context_root: Path) -> None:
    selection = digest(hasher, context_root, "app/./*.py", parents=True)
    assert list(selection.files) == ["app/./main.py", "app/./util.py"]


def test_unreadable_stat_cache_row_is_treated_as_empty(tmp_path: Path, context_root: Path) -> None:
    cache_path = tmp_path / "store" / "contenthash.db"
    with ContextHasher(cache_path) as first:
        expected = digest(first, context_root, "app").digest
    with sqlite3.connect(cache_path) as db:
        db.execute("UPDATE tree_dirs SET record = ?", (b"\x00garbage",))
    with ContextHasher(cache_path) as second:
        assert digest(second, context_root, "app").digest == expected
        assert second.files_read == 3


def test_files_are_short_digests_and_marks(hasher: ContextHasher, context_root: Path) -> None:
    selection = digest(hasher, context_root, "app/main.py", "gone")
    assert selection.files["gone"] == "missing"
    assert len(selection.files["app/main.py"]) == 32  # 128 bits: the donor layer trusts them
    assert repr(selection) == f"SourceDigest({selection.digest!r}, 2 entries)"


def test_whole_context_paths_are_named_from_the_root(hasher: ContextHasher, context_root: Path) -> None:
    assert list(digest(hasher, context_root, ".").files) == [
        ".",
        ".dockerignore",
        "README",
        "app",
        "app/main.py",
        "app/notes.md",
        "app/util.py",
    ]


@pytest.fixture
def plain_root(tmp_path: Path) -> Path:
    """A context nothing is ignored in, so every directory's lines may be replayed."""
    return write_old_files(
        tmp_path / "plain", {"lib/a.py": "a = 1\n", "lib/b.md": "b\n", "lib/sub/c.txt": "c\n"}
    )


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The directories whose lines were made afresh rather than replayed."""
    made: list[str] = []
    original = TreeWalk._render

    def counting(self: TreeWalk, *args: Any, **kwargs: Any) -> Any:
        made.append(kwargs["tree_rel"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(TreeWalk, "_render", counting)
    return made


def test_an_unchanged_directory_is_replayed_and_a_changed_one_is_not(
    tmp_path: Path, plain_root: Path, renders: list[str]
) -> None:
    cache_path = tmp_path / "store" / "contenthash.db"
    with ContextHasher(cache_path) as first:
        expected = digest(first, plain_root, ".")
    assert renders == ["", "lib", "lib/sub"]
    renders.clear()
    with ContextHasher(cache_path) as second:
        again = digest(second, plain_root, ".")
        assert (again.digest, dict(again.files)) == (expected.digest, dict(expected.files))
        assert (renders, second.files_read) == ([], 0)
        write_old_file(plain_root, "lib/sub/c.txt", "C\n")  # same size, same mtime: only the ctime moves
        changed = digest(second, plain_root, ".")
        assert (renders, second.files_read) == (["lib/sub"], 1)
        assert [name for name in changed.files if changed.files[name] != expected.files[name]] == [
            "lib/sub/c.txt"
        ]
        (plain_root / "lib/a.py").chmod(0o600)
        assert digest(second, plain_root, ".").digest != changed.digest
        assert renders == ["lib/sub", "lib"]


def test_ignored_files_do_not_stop_a_directory_being_replayed(
    hasher: ContextHasher, plain_root: Path, renders: list[str]
) -> None:
    write_old_file(plain_root, ".dockerignore", "**/*.log\n")
    write_old_file(plain_root, "lib/sub/debug.log", "1\n")
    expected = digest(hasher, plain_root, ".").digest
    renders.clear()
    assert digest(hasher, plain_root, ".").digest == expected
    assert renders == []
    write_old_file(plain_root, "lib/sub/debug.log", "2\n")
    assert digest(hasher, plain_root, ".").digest == expected
    assert renders == ["lib/sub"]


def test_an_excluded_directory_is_kept_when_something_deep_below_it_comes_back(
    hasher: ContextHasher, plain_root: Path
) -> None:
    write_old_file(plain_root, ".dockerignore", "logs\n!logs/a/b/keep.log\n")
    write_old_file(plain_root, "logs/a/b/other.log", "other\n")
    assert "logs" not in digest(hasher, plain_root, ".").files
    assert "logs" not in digest(hasher, plain_root, ".").files
    write_old_file(plain_root, "logs/a/b/keep.log", "keep\n")  # no mtime above logs/a/b moves
    assert [name for name in digest(hasher, plain_root, ".").files if name.startswith("logs")] == [
        "logs",
        "logs/a",
        "logs/a/b",
        "logs/a/b/keep.log",
    ]


def test_remembered_lines_are_not_replayed_under_another_name_or_filter(
    tmp_path: Path, plain_root: Path, renders: list[str]
) -> None:
    os.symlink("lib", plain_root / "entry")
    cache_path = tmp_path / "store" / "contenthash.db"
    runs = []
    for _ in range(2):
        renders.clear()
        with ContextHasher(cache_path) as hasher:
            runs.append(
                [
                    list(digest(hasher, plain_root, "entry").files),
                    list(digest(hasher, plain_root, "lib", exclude=["*.md"]).files),
                    list(digest(hasher, plain_root, "lib").files),
                    list(digest(hasher, plain_root, "entry").files),
                ]
            )
    assert runs[0] == runs[1]
    assert runs[1] == [
        ["entry", "entry/a.py", "entry/b.md", "entry/sub", "entry/sub/c.txt"],
        ["lib", "lib/a.py", "lib/sub", "lib/sub/c.txt"],
        ["lib", "lib/a.py", "lib/b.md", "lib/sub", "lib/sub/c.txt"],
        ["entry", "entry/a.py", "entry/b.md", "entry/sub", "entry/sub/c.txt"],
    ]
    assert renders == []  # the second run replayed each of the three renderings


def test_a_changed_ignore_file_is_seen_by_a_remembered_directory(
    hasher: ContextHasher, context_root: Path
) -> None:
    assert "app/notes.md" in digest(hasher, context_root, ".").files
    write_old_file(context_root, ".dockerignore", "app/build\n**/*.md\n")
    assert "app/notes.md" not in digest(hasher, context_root, ".").files


def test_a_file_named_on_its_own_is_remembered(tmp_path: Path, context_root: Path) -> None:
    cache_path = tmp_path / "store" / "contenthash.db"
    with ContextHasher(cache_path) as first:
        expected = digest(first, context_root, "app/main.py").digest
        assert first.files_read == 1
    with ContextHasher(cache_path) as second:
        assert digest(second, context_root, "app/main.py").digest == expected
        assert second.files_read == 0
        digest(second, context_root, "app")
        assert second.files_read == 2  # util.py and notes.md; main.py was remembered


def test_names_that_are_not_utf8_are_remembered(tmp_path: Path, plain_root: Path) -> None:
    odd_dir = os.path.join(os.fsencode(plain_root), b"odd\xff")
    os.mkdir(odd_dir)
    with open(os.path.join(odd_dir, b"f\xfe.txt"), "wb") as out:
        out.write(b"odd\n")
    os.utime(os.path.join(odd_dir, b"f\xfe.txt"), (OLD_MTIME, OLD_MTIME))
    cache_path = tmp_path / "store" / "contenthash.db"
    with ContextHasher(cache_path) as first:
        expected = digest(first, plain_root, ".")
    with ContextHasher(cache_path) as second:
        assert digest(second, plain_root, ".").digest == expected.digest
        assert second.files_read == 0
    assert [name for name in expected.files if name.startswith("odd")] == [
        "odd\udcff",
        "odd\udcff/f\udcfe.txt",
    ]


def test_a_walk_calls_on_change_once_at_the_first_changed_directory_and_lists_what_it_met(
    tmp_path: Path, context_root: Path
) -> None:
    """A re-run's layer is hashed ahead from the first sign that its step will miss; a walk
    that replays every directory gives none. The call says whether the directory the walk
    started at has other entry names. The listings give each entry's ``lstat``."""
    cache_path = tmp_path / "store" / "contenthash.db"
    calls: list[tuple[str, bool]] = []
    with ContextHasher(cache_path) as first:
        digest(first, context_root, "app", on_change=lambda renamed: calls.append(("first", renamed)))
    assert calls == [("first", True)]  # nothing remembered yet
    with ContextHasher(cache_path) as second:
        unchanged = digest(
            second, context_root, "app", on_change=lambda renamed: calls.append(("same", renamed))
        )
        assert calls == [("first", True)]
        names, infos = unchanged.listings["app"].names, unchanged.listings["app"].stats
        assert "main.py" in names
        assert infos[names.index("main.py")].st_mtime == OLD_MTIME  # type: ignore[union-attr]
        write_old_file(context_root, "app/util.py", "X = 2\n")
        digest(second, context_root, "app", on_change=lambda renamed: calls.append(("edited", renamed)))
        (context_root / "app/more.py").write_text("Y = 1\n")
        digest(second, context_root, "app", on_change=lambda renamed: calls.append(("added", renamed)))
        assert calls == [("first", True), ("edited", False), ("added", True)]


@pytest.mark.parametrize("odd", ["new\nline.txt", "carriage\rreturn.txt", "both\r\n.txt", "12:x y.txt"])
def test_names_holding_line_ends_get_their_own_digests(tmp_path: Path, odd: str) -> None:
    """The per-file digests are cut from the hashed lines at line ends when they can be: a
    name holding one (or looking like the start of a line) must still be told apart."""
    root = tmp_path / "ctx"
    (root / "dir").mkdir(parents=True)
    (root / "dir" / odd).write_text("odd\n")
    (root / "dir/plain.txt").write_text("plain\n")
    (root / "dir/z.txt").write_text("last\n")
    with ContextHasher(tmp_path / "contenthash.db") as hasher:
        files = digest(hasher, root, "dir").files
    assert set(files) == {"dir", f"dir/{odd}", "dir/plain.txt", "dir/z.txt"}
    assert len(set(files.values())) == 4
