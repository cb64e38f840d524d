"""The context scan: a forked helper lists the context's directories ahead of the walk, and
the walk replays a directory from it only when the scan found it as its record has it."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from builder.context import BuildContext
from cache.contenthash import ContextHasher, SourceDigest
from cache.prescan import UNLISTED, ContextScan, scan
from cache.statcache import StatCache
from cache.treewalk import TreeWalk
from tests.fixtures.context_files import write_old_file, write_old_files


@pytest.fixture
def context_root(tmp_path: Path) -> Path:
    return write_old_files(
        tmp_path / "ctx",
        {
            "app/main.py": "print(1)\n",
            "app/lib/util.py": "X = 1\n",
            "app/lib/deep/more.py": "Y = 1\n",
            "docs/index.md": "docs\n",
            "build/out.o": "obj\n",
            "build/keep/kept.txt": "kept\n",
            "node_modules/pkg/index.js": "js\n",
            ".dockerignore": "node_modules\nbuild\n!build/keep\n",
        },
    )


def scanned(root: Path) -> ContextScan:
    """A scan of ``root`` run here, read through the pipe the build reads it from."""
    read_fd, write_fd = os.pipe()

    def send(frame: bytes) -> None:
        os.write(write_fd, frame)

    try:
        scan(BuildContext.open(root), send)
    finally:
        os.close(write_fd)
    os.set_blocking(read_fd, False)
    result = ContextScan(str(root), None, None, read_fd)
    result.wait()
    return result


def frames(root: Path) -> list[tuple[str, str]]:
    sent: list[bytes] = []
    scan(BuildContext.open(root), sent.append)
    return [(frame[:-1].partition(b" ")[2].decode(), frame.partition(b" ")[0].decode()) for frame in sent]


def walk(root: Path, cache_path: Path, context_scan: ContextScan | None = None) -> SourceDigest:
    with ContextHasher(cache_path, scan=context_scan) as hasher:
        return hasher.digest_sources(BuildContext.open(root), ["."])


def test_the_scan_goes_against_the_walks_order_and_skips_what_is_ignored(context_root: Path) -> None:
    order = [directory for directory, _fingerprint in frames(context_root)]
    # Each directory's last subdirectory first; node_modules is ignored with nothing let
    # back in, build is ignored but leads to build/keep.
    assert order == ["", "docs", "build", "build/keep", "app", "app/lib", "app/lib/deep"]


def test_each_fingerprint_is_the_one_the_walk_records(context_root: Path, tmp_path: Path) -> None:
    walk(context_root, tmp_path / "cache.db")
    sent = dict(frames(context_root))
    cache = StatCache(tmp_path / "cache.db")
    try:
        records = cache.tree(context_root)
        for directory in ("", "app", "app/lib", "app/lib/deep", "docs", "build/keep"):
            record = records.directory(directory)
            assert record is not None
            assert sent[directory] == record.fingerprint, directory
    finally:
        cache.close()


def test_an_unreadable_directory_is_sent_as_unlisted(
    context_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cache import listing

    original = listing.sorted_names

    def refuse_docs(fd: int) -> list[str]:
        names = original(fd)
        if "index.md" in names:
            raise PermissionError(13, "Permission denied")
        return names

    monkeypatch.setattr(listing, "sorted_names", refuse_docs)
    assert dict(frames(context_root))["docs"] == UNLISTED


def test_a_walk_replays_the_unchanged_directories_from_the_scan_and_lists_the_changed_one(
    context_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache_path = tmp_path / "cache.db"
    first = walk(context_root, cache_path)
    write_old_file(context_root, "app/lib/util.py", "X = 2, edited\n")
    listed: list[str] = []
    original = TreeWalk._listed

    def spy(self: TreeWalk, *args: object, **kwargs: object) -> object:
        listed.append(str(kwargs["tree_rel"]))
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(TreeWalk, "_listed", spy)
    with scanned(context_root) as context_scan:
        with_scan = walk(context_root, cache_path, context_scan)
    # The root too: its lines are never replayed, since whether the walk keeps the ignored
    # build/ depends on what lies below it.
    assert listed == ["", "app/lib"]
    listed.clear()
    without_scan = walk(context_root, tmp_path / "fresh.db")
    assert with_scan.digest == without_scan.digest != first.digest
    assert with_scan.fingerprints == without_scan.fingerprints
    assert with_scan.group_digests == without_scan.group_digests
    # A replayed directory's entries are looked up when asked for, as the walk would have.
    replayed, listed_here = with_scan.listings["app"], without_scan.listings["app"]
    assert replayed.names == listed_here.names
    assert [info.st_ino for info in replayed.stats if info] == [
        info.st_ino for info in listed_here.stats if info
    ]


def test_a_directory_changed_after_the_walk_recorded_it_is_listed_again(
    context_root: Path, tmp_path: Path
) -> None:
    """The scan finds it unlike its record: the walk lists it, sees the change, and says so."""
    cache_path = tmp_path / "cache.db"
    walk(context_root, cache_path)
    write_old_file(context_root, "docs/new.md", "new\n")
    changes: list[bool] = []
    with scanned(context_root) as context_scan, ContextHasher(cache_path, scan=context_scan) as hasher:
        digest = hasher.digest_sources(BuildContext.open(context_root), ["."], on_change=changes.append)
    assert "docs/new.md" in digest.files
    assert changes == [False]


def test_the_forked_helper_sends_what_the_scan_does_and_is_collected(context_root: Path) -> None:
    expected = dict(frames(context_root))
    context_scan = ContextScan.start(context_root, None)
    assert context_scan is not None
    with context_scan:
        context_scan.wait()
        assert {directory: context_scan.fingerprint(directory) for directory in expected} == expected
    pid = context_scan._pid
    assert pid is None  # collected: no zombie left


def test_closing_stops_a_helper_still_scanning(tmp_path: Path) -> None:
    root = tmp_path / "big"
    for index in range(300):
        (root / f"d{index:03d}" / "sub").mkdir(parents=True)
    context_scan = ContextScan.start(root, None)
    assert context_scan is not None
    helper = context_scan._pid
    context_scan.close()
    assert helper is not None
    with pytest.raises(ChildProcessError):
        os.waitpid(helper, os.WNOHANG)  # already collected


def test_no_helper_is_forked_beside_other_threads(context_root: Path) -> None:
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        assert ContextScan.start(context_root, None) is None
    finally:
        release.set()
        other.join()


def test_only_a_walk_of_the_scanned_context_uses_the_scan(context_root: Path, tmp_path: Path) -> None:
    other_root = write_old_files(tmp_path / "other", {"app/main.py": "print(1)\n"})
    with (
        scanned(context_root) as context_scan,
        ContextHasher(tmp_path / "cache.db", scan=context_scan) as hasher,
    ):
        digest = hasher.digest_sources(BuildContext.open(other_root), ["."])
    assert "app/main.py" in digest.files


def test_a_bad_ignore_file_ends_the_scan_and_the_helper_is_collected(context_root: Path) -> None:
    """The build reports the ignore file where it opens the context; the scan sends nothing."""
    from cache.prescan import scan_context

    (context_root / ".dockerignore").write_text("!\n")
    sent: list[bytes] = []
    scan_context(context_root, None, sent.append)
    assert sent == []
    context_scan = ContextScan.start(context_root, None)
    assert context_scan is not None
    helper = context_scan._pid
    with context_scan:
        context_scan.wait()
        assert context_scan.fingerprint("") is None
    assert helper is not None
    with pytest.raises(ChildProcessError):
        os.waitpid(helper, os.WNOHANG)
