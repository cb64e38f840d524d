"""A COPY re-run after some context files changed links the others from its previous layer,
and the layer it makes is exactly the one a fresh copy makes."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path

import pytest

from builder.store.snapshots import chain_ids
from builder.store.store import Store
from builder.store.write_out import KEEP_SPLICES
from tests.conftest import require_tool
from tests.fixtures.cache_builds import BASE, build_concurrently, busybox_tar, kiln_build, ran, store_root

__all__ = ["busybox_tar", "store_root"]  # fixtures used here

DOCKERFILE = f"FROM {BASE}\nCOPY app /app\nRUN cat /app/a.txt > /seen\n"
FILES = {"a.txt": "alpha\n", "b.txt": "bravo\n", "sub/c.txt": "charlie\n", "sub/d.txt": "delta\n"}


@pytest.fixture
def context(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    for relative, text in FILES.items():
        path = root / "app" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _copy_layer(store_root: Path, tag: str) -> tuple[str, Path]:
    """The diff id of the image's COPY layer and its snapshot directory."""
    with Store.open(store_root) as store:
        _manifest, config = store.get_image(store.resolve(tag))
        diff_ids = config["rootfs"]["diff_ids"]
        chain = chain_ids(diff_ids)[-2]
        return diff_ids[-2], store.snapshots.path(chain)


def _inode(path: Path) -> int:
    return os.lstat(path).st_ino


def _assert_a_fresh_copy_gives(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context: Path, dockerfile: str, diff_id: str
) -> None:
    """The same context copied with nothing to reuse (``--no-cache``) gives layer ``diff_id``."""
    kiln_build(monkeypatch, store_root, context, dockerfile, "--no-cache", "-t", "reuse:fresh")
    assert _copy_layer(store_root, "reuse:fresh")[0] == diff_id


def _inodes(root: Path, names: list[str]) -> dict[str, int]:
    return {name: _inode(root / name) for name in names}


def test_unchanged_files_are_taken_with_the_previous_snapshot_and_the_layer_matches_a_fresh_copy(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context: Path, tmp_path: Path
) -> None:
    """The previous snapshot's tree becomes the re-run's: its unchanged files stay the same
    inodes, and the previous image's snapshot is unpacked again when it is needed."""
    kiln_build(monkeypatch, store_root, context, DOCKERFILE, "-t", "reuse:1")
    _first_diff, first = _copy_layer(store_root, "reuse:1")
    names = ["app/a.txt", "app/b.txt", "app/sub/c.txt", "app/sub/d.txt"]
    before = _inodes(first, names)
    (context / "app/a.txt").write_text("alpha, edited\n")
    results = kiln_build(monkeypatch, store_root, context, DOCKERFILE, "-t", "reuse:2")
    assert ran(results) == ["COPY app /app", "RUN cat /app/a.txt > /seen"]
    diff_id, second = _copy_layer(store_root, "reuse:2")
    after = _inodes(second, names)
    assert (second / "app/a.txt").read_text() == "alpha, edited\n"
    assert after.pop("app/a.txt") != before.pop("app/a.txt")
    assert after == before
    assert not first.exists()
    _assert_a_fresh_copy_gives(monkeypatch, store_root, context, DOCKERFILE, diff_id)
    with Store.open(store_root) as store:
        unpacked = store.snapshot_for("reuse:1")[-2]
    assert unpacked == first
    assert (first / "app/a.txt").read_text() == "alpha\n"


@pytest.mark.parametrize("edit", ["same-length", "longer"])
def test_one_edited_files_entry_is_foretold_when_it_keeps_its_length(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context: Path, edit: str
) -> None:
    """The re-run that rewrote one file hashes the previous tar with that file's new entry
    while its layer is written, when the entry takes as many bytes as before; the layer is
    a fresh copy's either way."""
    from builder import stepcommit

    told: list[int] = []
    original = stepcommit._prehash

    def spy(opened: stepcommit.OpenedLayer, patch_at: int, patch: bytes) -> None:
        told.append(len(patch))
        original(opened, patch_at, patch)

    monkeypatch.setattr(stepcommit, "_prehash", spy)
    kiln_build(monkeypatch, store_root, context, DOCKERFILE, "-t", "reuse:1")
    (context / "app/sub/c.txt").write_text("charlie, edited\n" if edit == "same-length" else "c" * 600)
    kiln_build(monkeypatch, store_root, context, DOCKERFILE, "-t", "reuse:2")
    assert told == ([1024] if edit == "same-length" else [])  # a header and one block of content
    diff_id, _snapshot = _copy_layer(store_root, "reuse:2")
    _assert_a_fresh_copy_gives(monkeypatch, store_root, context, DOCKERFILE, diff_id)


def test_a_snapshot_in_use_is_not_taken_and_its_files_are_linked(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context: Path
) -> None:
    """While a lease holds the previous snapshot (another build runs on it), the re-run links
    its files into a tree of its own and leaves the snapshot as it is."""
    kiln_build(monkeypatch, store_root, context, DOCKERFILE, "-t", "reuse:1")
    _diff, first = _copy_layer(store_root, "reuse:1")
    with Store.open(store_root) as store:
        first_chain = chain_ids(store.get_image(store.resolve("reuse:1"))[1]["rootfs"]["diff_ids"])[-2]
    (context / "app/a.txt").write_text("alpha, edited\n")
    with Store.open(store_root) as store, store.lease() as lease:
        lease.add_snapshot(first_chain)
        kiln_build(monkeypatch, store_root, context, DOCKERFILE, "-t", "reuse:2")
    _diff, second = _copy_layer(store_root, "reuse:2")
    assert (first / "app/a.txt").read_text() == "alpha\n"
    assert _inode(second / "app/b.txt") == _inode(first / "app/b.txt")


def test_a_file_become_a_directory_starts_the_copy_over_without_the_previous_tree(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context: Path
) -> None:
    kiln_build(monkeypatch, store_root, context, DOCKERFILE, "-t", "reuse:1")
    (context / "app/b.txt").unlink()
    (context / "app/b.txt").mkdir()
    (context / "app/b.txt/inner").write_text("inside\n")
    (context / "app/c.txt").write_text("new\n")
    kiln_build(monkeypatch, store_root, context, DOCKERFILE, "-t", "reuse:2")
    diff_id, second = _copy_layer(store_root, "reuse:2")
    assert (second / "app/b.txt/inner").read_text() == "inside\n"
    _assert_a_fresh_copy_gives(monkeypatch, store_root, context, DOCKERFILE, diff_id)


def test_successive_edits_each_take_the_last_tree_and_match_a_fresh_copy(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context: Path
) -> None:
    kiln_build(monkeypatch, store_root, context, DOCKERFILE, "-t", "reuse:0")
    for round_ in range(1, 4):
        (context / "app/sub/c.txt").write_text(f"charlie {round_}\n")
        (context / f"app/added{round_}.txt").write_text(f"added {round_}\n")
        kiln_build(monkeypatch, store_root, context, DOCKERFILE, "-t", f"reuse:{round_}")
    diff_id, last = _copy_layer(store_root, "reuse:3")
    assert sorted(path.name for path in (last / "app").iterdir()) == [
        "a.txt",
        "added1.txt",
        "added2.txt",
        "added3.txt",
        "b.txt",
        "sub",
    ]
    _assert_a_fresh_copy_gives(monkeypatch, store_root, context, DOCKERFILE, diff_id)


def test_the_re_run_layer_is_kept_as_a_splice_that_outlives_its_source_image(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context: Path, tmp_path: Path
) -> None:
    """The re-run's layer is stored as ranges of the previous layer's blob plus the new
    bytes; removing the first image and pruning keeps what the second needs, and it
    exports whole."""
    from builder.cli.main import main
    from builder.store import prune

    monkeypatch.setenv(KEEP_SPLICES, "1")  # as it stands, not written out in the background
    kiln_build(monkeypatch, store_root, context, DOCKERFILE, "-t", "reuse:1")
    first_diff, _first = _copy_layer(store_root, "reuse:1")
    (context / "app/sub/c.txt").write_text("charlie, edited\n")
    kiln_build(monkeypatch, store_root, context, DOCKERFILE, "-t", "reuse:2")
    diff_id, _second = _copy_layer(store_root, "reuse:2")
    with Store.open(store_root) as store:
        assert store.blobs.splice_path(diff_id).is_file()
        assert not store.blobs.path(diff_id).exists()
        assert first_diff in {part.source for part in store.blobs.parts(diff_id)}
    assert main(["--root", str(store_root), "rmi", "reuse:1"]) == 0
    with Store.open(store_root) as store:
        prune(store)
        assert store.blobs.verify(diff_id)
    archive = tmp_path / "reuse.tar"
    assert (
        main(
            [
                "--root",
                str(store_root),
                "save",
                "--format",
                "oci",
                "--compression",
                "none",
                "-o",
                str(archive),
                "reuse:2",
            ]
        )
        == 0
    )
    import tarfile

    with tarfile.open(archive) as saved:
        member = saved.extractfile(f"blobs/sha256/{diff_id.removeprefix('sha256:')}")
        assert member is not None
        assert "sha256:" + hashlib.sha256(member.read()).hexdigest() == diff_id
    # A docker archive checks each uncompressed layer against its diff id on the way out.
    docker_archive = tmp_path / "reuse-docker.tar"
    assert main(["--root", str(store_root), "save", "-o", str(docker_archive), "reuse:2"]) == 0


def test_a_spliced_layer_is_written_out_whole_for_outside_tools(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context: Path, tmp_path: Path
) -> None:
    """After the build, a background writer puts the spliced layer's whole blob into the
    store's OCI layout, where skopeo copies the image from."""
    skopeo = require_tool("skopeo")
    monkeypatch.delenv(KEEP_SPLICES, raising=False)
    kiln_build(monkeypatch, store_root, context, DOCKERFILE, "-t", "reuse:1")
    (context / "app/sub/c.txt").write_text("charlie, edited\n")
    kiln_build(monkeypatch, store_root, context, DOCKERFILE, "-t", "reuse:2")
    diff_id, _second = _copy_layer(store_root, "reuse:2")
    with Store.open(store_root) as store:
        whole = store.blobs.path(diff_id)
        assert store.blobs.splice_path(diff_id).is_file()
        deadline = time.monotonic() + 60
        while not whole.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert whole.exists(), "the spliced layer was not written out"
        assert store.blobs.verify(diff_id)
    copied = tmp_path / "copied"
    subprocess.run(
        [skopeo, "copy", f"oci:{store_root}:reuse:2", f"dir:{copied}"], check=True, capture_output=True
    )
    assert (copied / diff_id.removeprefix("sha256:")).is_file()


def test_a_changed_file_of_the_same_size_and_time_is_copied_not_linked(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context: Path
) -> None:
    kiln_build(monkeypatch, store_root, context, DOCKERFILE, "-t", "reuse:1")
    edited = context / "app/sub/c.txt"
    before = os.lstat(edited)
    edited.write_text("CHARLIE\n")
    os.utime(edited, ns=(before.st_atime_ns, before.st_mtime_ns))
    results = kiln_build(monkeypatch, store_root, context, DOCKERFILE, "-t", "reuse:2")
    assert ran(results) == ["COPY app /app", "RUN cat /app/a.txt > /seen"]
    diff_id, second = _copy_layer(store_root, "reuse:2")
    assert (second / "app/sub/c.txt").read_text() == "CHARLIE\n"
    assert (second / "app/sub/d.txt").read_text() == "delta\n"
    # The new file may not pass for the old one in the previous layer's index, even where
    # the old one's inode number is free again: the layer holds the new bytes.
    _assert_a_fresh_copy_gives(monkeypatch, store_root, context, DOCKERFILE, diff_id)


def test_a_removed_file_is_gone_and_a_changed_mode_is_copied(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context: Path
) -> None:
    kiln_build(monkeypatch, store_root, context, DOCKERFILE, "-t", "reuse:1")
    _diff, first = _copy_layer(store_root, "reuse:1")
    (context / "app/b.txt").unlink()
    os.chmod(context / "app/sub/d.txt", 0o600)
    kiln_build(monkeypatch, store_root, context, DOCKERFILE, "-t", "reuse:2")
    _diff, second = _copy_layer(store_root, "reuse:2")
    assert not (second / "app/b.txt").exists()
    assert os.lstat(second / "app/sub/d.txt").st_mode & 0o777 == 0o600
    assert _inode(second / "app/sub/d.txt") != _inode(first / "app/sub/d.txt")
    assert _inode(second / "app/sub/c.txt") == _inode(first / "app/sub/c.txt")


def test_files_copied_into_a_directory_of_the_base_are_linked_after_the_unmount(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context: Path
) -> None:
    """/tmp is in the base image: the copier writes there through the overlay mount, and
    the unchanged files are taken with the previous tree (or linked into the upper dir once
    the mount is gone); /tmp keeps the base's time, as in a fresh copy."""
    into_base = f"FROM {BASE}\nCOPY app/ /tmp/\nRUN cat /tmp/a.txt > /seen\n"
    kiln_build(monkeypatch, store_root, context, into_base, "-t", "reuse:1")
    _diff, first = _copy_layer(store_root, "reuse:1")
    before = _inodes(first, ["tmp/b.txt", "tmp/sub/c.txt"])
    (context / "app/a.txt").write_text("alpha, edited\n")
    kiln_build(monkeypatch, store_root, context, into_base, "-t", "reuse:2")
    diff_id, second = _copy_layer(store_root, "reuse:2")
    assert (second / "tmp/a.txt").read_text() == "alpha, edited\n"
    assert _inodes(second, ["tmp/b.txt", "tmp/sub/c.txt"]) == before
    _assert_a_fresh_copy_gives(monkeypatch, store_root, context, into_base, diff_id)


def test_a_re_run_whose_files_were_all_linked_after_the_unmount_is_spliced(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, tmp_path: Path
) -> None:
    """Files right in the destination directory are written through the mount, and claimed
    to be linked after it: they count as taken from the previous layer, so the layer is
    spliced from it rather than written whole."""
    monkeypatch.setenv(KEEP_SPLICES, "1")
    root = tmp_path / "flat"
    (root / "app").mkdir(parents=True)
    for index in range(10):
        (root / f"app/f{index}.txt").write_text(f"file {index}\n" * 100)
    flat = f"FROM {BASE}\nCOPY app /app\n"
    kiln_build(monkeypatch, store_root, root, flat, "-t", "flat:1")
    (root / "app/f3.txt").write_text("edited\n")
    kiln_build(monkeypatch, store_root, root, flat, "-t", "flat:2")
    diff_id, _snapshot = _copy_layer_at(store_root, "flat:2", -1)
    with Store.open(store_root) as store:
        assert store.blobs.splice_path(diff_id).is_file()
        assert store.blobs.verify(diff_id)


def test_an_index_is_not_trusted_for_a_snapshot_unpacked_again(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context: Path
) -> None:
    """A layer's index names the inodes of the snapshot it was written from. Once that
    snapshot is removed and unpacked again (into a directory that may well get the same
    inode number), the index no longer describes it and is not used."""
    from types import SimpleNamespace
    from typing import cast

    from builder.stepcommit import indexed_layer
    from cache.records import CacheRecord

    kiln_build(monkeypatch, store_root, context, DOCKERFILE, "-t", "reuse:1")
    with Store.open(store_root) as store:
        _manifest, config = store.get_image(store.resolve("reuse:1"))
        diff_ids = config["rootfs"]["diff_ids"]
        chains = chain_ids(diff_ids)
        diff_id, chain_id = diff_ids[-2], chains[-2]
        record = cast(CacheRecord, SimpleNamespace(blob_digest=diff_id, diff_id=diff_id, chain_id=chain_id))
        assert indexed_layer(store, record) is not None
        # A directory keeping its device and inode but not its change time is another one.
        snapshot = store.snapshots.path(chain_id)
        os.chmod(snapshot, os.lstat(snapshot).st_mode & 0o7777)
        assert indexed_layer(store, record) is None
        store.snapshots.remove(chain_id)
        store.snapshots.ensure(chain_id, chains[-3], diff_id, diff_id)
        assert indexed_layer(store, record) is None


def test_hard_links_between_a_base_directory_and_a_new_one_stay_links(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, tmp_path: Path
) -> None:
    """/etc is in the base (written through the mount), /newdir is made by the copy (written
    into the upper dir): a hard link between them must not cross the two."""
    root = tmp_path / "linked"
    (root / "etc").mkdir(parents=True)
    (root / "newdir").mkdir()
    (root / "etc/y").write_text("shared\n")
    os.link(root / "etc/y", root / "newdir/x")
    kiln_build(monkeypatch, store_root, root, f"FROM {BASE}\nCOPY . /\n", "-t", "links:1")
    _diff, snapshot = _copy_layer_at(store_root, "links:1", -1)
    assert os.lstat(snapshot / "etc/y").st_ino == os.lstat(snapshot / "newdir/x").st_ino
    assert (snapshot / "newdir/x").read_text() == "shared\n"


def test_two_sources_writing_one_destination_take_nothing_from_the_previous_layer(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, tmp_path: Path
) -> None:
    """``COPY a/ b/ /dest/``: b/x overwrote a/x. With b/x gone, /dest/x must be a's again,
    although the previous layer's /dest/x has a/x's size and time."""
    root = tmp_path / "two"
    for name, text in (("a/x", "AAAA\n"), ("b/x", "BBBB\n")):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
        os.utime(root / name, ns=(MTIME_NS, MTIME_NS))
    two = f"FROM {BASE}\nCOPY a/ b/ /dest/\n"
    kiln_build(monkeypatch, store_root, root, two, "-t", "two:1")
    (root / "b/x").unlink()
    kiln_build(monkeypatch, store_root, root, two, "-t", "two:2")
    _diff, snapshot = _copy_layer_at(store_root, "two:2", -1)
    assert (snapshot / "dest/x").read_text() == "AAAA\n"


MTIME_NS = 1_600_000_000_000_000_000


def _copy_layer_at(store_root: Path, tag: str, index: int) -> tuple[str, Path]:
    with Store.open(store_root) as store:
        _manifest, config = store.get_image(store.resolve(tag))
        diff_ids = config["rootfs"]["diff_ids"]
        return diff_ids[index], store.snapshots.path(chain_ids(diff_ids)[index])


@pytest.fixture
def changes_seen(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each in-place re-run was brought up to date from the change set alone."""
    from builder.fileops import changeset

    seen: list[bool] = []
    original = changeset.copy_changes

    def spy(*args: object, **kwargs: object) -> bool:
        done = original(*args, **kwargs)  # type: ignore[arg-type]
        seen.append(done)
        return done

    monkeypatch.setattr(changeset, "copy_changes", spy)
    return seen


def test_an_in_place_re_run_writes_only_the_changed_entries_and_matches_a_fresh_copy(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context: Path, changes_seen: list[bool]
) -> None:
    """Each kind of change: content, a time alone, a directory's mode, a new directory
    with files, a new symlink; the rest stays the same inodes."""
    kiln_build(monkeypatch, store_root, context, DOCKERFILE, "-t", "reuse:1")
    _diff, first = _copy_layer(store_root, "reuse:1")
    before = _inodes(first, ["app/b.txt", "app/sub/d.txt"])
    (context / "app/a.txt").write_text("alpha, edited\n")
    os.utime(context / "app/sub/c.txt", ns=(MTIME_NS, MTIME_NS))
    os.chmod(context / "app/sub", 0o750)
    (context / "app/new/deeper").mkdir(parents=True)
    (context / "app/new/deeper/e.txt").write_text("echo\n")
    (context / "app/link").symlink_to("a.txt")
    kiln_build(monkeypatch, store_root, context, DOCKERFILE, "-t", "reuse:2")
    assert changes_seen == [True]
    diff_id, second = _copy_layer(store_root, "reuse:2")
    assert _inodes(second, ["app/b.txt", "app/sub/d.txt"]) == before
    assert os.lstat(second / "app/sub/c.txt").st_mtime_ns == MTIME_NS
    assert os.lstat(second / "app/sub").st_mode & 0o777 == 0o750
    assert (second / "app/new/deeper/e.txt").read_text() == "echo\n"
    assert os.readlink(second / "app/link") == "a.txt"
    _assert_a_fresh_copy_gives(monkeypatch, store_root, context, DOCKERFILE, diff_id)


def test_a_hard_linked_source_sends_the_in_place_copy_back_to_the_full_walk(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context: Path, changes_seen: list[bool]
) -> None:
    kiln_build(monkeypatch, store_root, context, DOCKERFILE, "-t", "reuse:1")
    os.link(context / "app/b.txt", context / "app/b-again.txt")
    kiln_build(monkeypatch, store_root, context, DOCKERFILE, "-t", "reuse:2")
    assert changes_seen == [False]
    diff_id, second = _copy_layer(store_root, "reuse:2")
    assert _inode(second / "app/b.txt") == _inode(second / "app/b-again.txt")
    _assert_a_fresh_copy_gives(monkeypatch, store_root, context, DOCKERFILE, diff_id)


@pytest.mark.parametrize(
    "added", ["entry", "nothing", "ignored"], ids=["entry-added", "file-edited", "ignored-added"]
)
def test_a_large_layer_is_hashed_ahead_of_its_probe_when_its_directory_is_restamped(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context: Path, added: str
) -> None:
    """With the size threshold lowered: when the directory copied into gets another entry,
    the re-run's foretold bytes are hashed from before its probe, and the copy gives that
    directory the foretold time; when only a file below it changed, the directory keeps the
    previous copy's time, and there is nothing to hash ahead. An ignored file added there
    makes the walk foretell a restamp that does not come: the foretold bytes are dropped.
    Each time, the layer is a fresh copy's but for that one time."""
    from builder import hashahead, stepcommit

    monkeypatch.setattr(hashahead, "AHEAD_MIN_SIZE", 0)
    foretold: list[int] = []
    original = stepcommit.foretell

    def spy(opened: stepcommit.OpenedLayer, directories: list[str], mtime: int) -> None:
        original(opened, directories, mtime)
        foretold.append(len(opened.layer.patch))

    monkeypatch.setattr(stepcommit, "foretell", spy)
    monkeypatch.delenv("SOURCE_DATE_EPOCH")  # real times: /app's header may be restamped
    (context / ".dockerignore").write_text("app/*.log\n")
    kiln_build(monkeypatch, store_root, context, DOCKERFILE, "-t", "reuse:1")
    (context / "app/sub/c.txt").write_text("charlie, edited\n")
    if added == "entry":
        (context / "app/new.txt").write_text("new\n")
    elif added == "ignored":
        (context / "app/build.log").write_text("ignored\n")
    started = _rebuild_in_a_new_second(monkeypatch, store_root, context, DOCKERFILE)
    if added == "nothing":
        assert not any(foretold)
    else:
        assert foretold and foretold[0] > 0
    _assert_like_a_fresh_copy(
        monkeypatch,
        store_root,
        context,
        DOCKERFILE,
        tag="reuse:2",
        started=started,
        now_timed={"app/"} if added == "entry" else set(),
        kept=("reuse:1", set() if added == "entry" else {"app/"}),
        layer=-2,  # the COPY's; the RUN's holds etc/ timed by its run
    )


@pytest.mark.parametrize("added", [True, False], ids=["entry-added", "below-only"])
def test_without_a_fixed_epoch_an_in_place_re_run_gives_a_fresh_copys_times(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context: Path, changes_seen: list[bool], added: bool
) -> None:
    """Every entry's time is its source's; the directories the copy made keep the previous
    copy's time, but the one copied into has the copy's when it got another entry."""
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    into_base = f"FROM {BASE}\nCOPY app/ /tmp/sub/dir/\n"
    kiln_build(monkeypatch, store_root, context, into_base, "-t", "reuse:1")
    (context / "app/a.txt").write_text("alpha, edited\n")
    os.utime(context / "app/sub/c.txt", ns=(MTIME_NS, MTIME_NS))
    (context / "app/sub/new.txt").write_text("new\n")
    if added:
        (context / "app/new.txt").write_text("new\n")
    started = _rebuild_in_a_new_second(monkeypatch, store_root, context, into_base)
    assert changes_seen == [True]
    # /tmp is the base's, given the copy's time when the copy made /tmp/sub in it; /tmp,
    # /tmp/sub and /tmp/sub/dir keep the previous copy's unless they get other entries.
    _assert_like_a_fresh_copy(
        monkeypatch,
        store_root,
        context,
        into_base,
        tag="reuse:2",
        started=started,
        now_timed={"tmp/sub/dir/"} if added else set(),
        kept=("reuse:1", {"tmp/", "tmp/sub/"} if added else {"tmp/", "tmp/sub/", "tmp/sub/dir/"}),
    )


def _layer_entries(store_root: Path, tag: str, index: int = -1) -> dict[str, tuple[object, ...]]:
    """The tar entries of the layer at ``index`` (checked against its diff id) by name."""
    import tarfile

    diff_id, _snapshot = _copy_layer_at(store_root, tag, index)
    with Store.open(store_root) as store:
        assert store.blobs.verify(diff_id)
        with store.blobs.open(diff_id) as stream, tarfile.open(fileobj=stream) as tar:
            entries = {}
            for member in tar:
                content = tar.extractfile(member).read() if member.isfile() else member.linkname  # type: ignore[union-attr]
                entries[member.name + ("/" if member.isdir() else "")] = (
                    member.type,
                    member.mode,
                    member.uid,
                    member.gid,
                    member.size,
                    member.mtime,
                    content,
                )
            return entries


def _rebuild_in_a_new_second(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context: Path, dockerfile: str
) -> int:
    """Build ``reuse:2`` once the clock has turned a second (a header time is whole
    seconds, so the copy's time is then later than the previous build's); that second."""
    time.sleep(1 - time.time() % 1)
    started = int(time.time())
    kiln_build(monkeypatch, store_root, context, dockerfile, "-t", "reuse:2")
    return started


def _assert_like_a_fresh_copy(
    monkeypatch: pytest.MonkeyPatch,
    store_root: Path,
    context: Path,
    dockerfile: str,
    *,
    tag: str,
    started: int,
    now_timed: set[str],
    kept: tuple[str, set[str]] = ("", set()),
    layer: int = -1,
) -> None:
    """The copy's layer (at ``layer``) of ``tag`` is a fresh copy's but for the times of
    ``now_timed``, which are the copy's (at or after ``started``), as they are in the fresh
    one, and those of ``kept`` (the tag of the previous build, and names), which are the
    previous layer's."""
    spliced = _layer_entries(store_root, tag, layer)
    previous_tag, kept_timed = kept
    previous = _layer_entries(store_root, previous_tag, layer) if kept_timed else {}
    kiln_build(monkeypatch, store_root, context, dockerfile, "--no-cache", "-t", "reuse:fresh")
    fresh = _layer_entries(store_root, "reuse:fresh", layer)
    assert now_timed | kept_timed <= set(fresh), "the times checked are of another layer's entries"
    assert set(spliced) == set(fresh)
    for name, entry in fresh.items():
        if name in now_timed or name in kept_timed:
            assert entry[5] >= started, name
            if name in now_timed:
                assert spliced[name][5] >= started, name
            else:
                assert spliced[name][5] == previous[name][5] < started, name
            assert spliced[name][:5] + spliced[name][6:] == entry[:5] + entry[6:], name
        else:
            assert spliced[name] == entry, name


def test_two_concurrent_re_runs_after_an_edit_both_succeed_with_the_same_layers(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context: Path, tmp_path: Path
) -> None:
    """One of them may take the previous snapshot in place; the other then copies from
    scratch. Both images are whole, with the same layers, and every snapshot unpacks."""
    kiln_build(monkeypatch, store_root, context, DOCKERFILE, "-t", "reuse:1")
    (context / "app/a.txt").write_text("alpha, edited\n")
    dockerfile = tmp_path / "Dockerfile.concurrent"
    dockerfile.write_text(DOCKERFILE)
    diff_ids = build_concurrently(store_root, dockerfile, context, tmp_path, env={KEEP_SPLICES: "1"})
    assert diff_ids[0] == diff_ids[1]
    with Store.open(store_root) as store:
        chains = chain_ids(diff_ids[0])
        for depth in (-2, -1):  # the COPY and the RUN, kept uncompressed as built
            diff_id = diff_ids[0][depth]
            assert store.blobs.verify(diff_id)
            assert store.snapshots.ensure(chains[depth], chains[depth - 1], diff_id, diff_id).is_dir()
        assert (store.snapshots.path(chains[-2]) / "app/a.txt").read_text() == "alpha, edited\n"


@pytest.mark.parametrize(
    "case",
    [
        (f"FROM {BASE}\nWORKDIR /work\nCOPY app .\n", {"work/"}),
        (f"FROM {BASE}\nCOPY --chmod=640 app /app\n", {"app/"}),
        (f"FROM {BASE}\nCOPY --link --chown=7:8 app /srv/app\n", {"srv/app/"}),
    ],
    ids=["into-workdir", "chmod", "link-chown"],
)
def test_in_place_re_runs_of_other_copies_match_a_fresh_copy(
    monkeypatch: pytest.MonkeyPatch,
    store_root: Path,
    context: Path,
    changes_seen: list[bool],
    case: tuple[str, set[str]],
) -> None:
    """Into a directory of an earlier layer, with --chmod, and --link with --chown: the
    re-run takes its previous tree, writes the change, and gives a fresh copy's layer
    (``case``: the Dockerfile, and the directories that get the copy's time: the one
    copied into, which gets another entry; /srv, made by the copy, keeps its time)."""
    dockerfile, now_timed = case
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    kiln_build(monkeypatch, store_root, context, dockerfile, "-t", "reuse:1")
    (context / "app/sub/c.txt").write_text("charlie, edited\n")
    (context / "app/new.txt").write_text("new\n")
    started = _rebuild_in_a_new_second(monkeypatch, store_root, context, dockerfile)
    assert changes_seen == [True]
    _assert_like_a_fresh_copy(
        monkeypatch,
        store_root,
        context,
        dockerfile,
        tag="reuse:2",
        started=started,
        now_timed=now_timed,
        kept=("reuse:1", {"srv/"} if "srv/app/" in now_timed else set()),
    )


@pytest.mark.parametrize("fails", [False, True], ids=["built", "run-failed"])
def test_a_build_leaves_no_mount_and_no_step_directory_behind(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context: Path, fails: bool
) -> None:
    """A RUN's overlay is unmounted, and step directories removed, beside the next steps
    (:mod:`builder.exec.deferred`): all of it is done by the time the build returns, a
    later RUN over the first one's layer included, and also when a RUN fails."""
    from builder.cli.main import main
    from builder.exec.overlay import is_mounted

    last = "RUN cat /listed && false" if fails else "RUN cat /listed"
    dockerfile = f"FROM {BASE}\nCOPY app /app\nRUN ls -R /app > /listed\n{last}\n"
    if fails:
        path = context.parent / "Dockerfile"
        path.write_text(dockerfile)
        assert main(["--root", str(store_root), "build", "-f", str(path), str(context)]) != 0
    else:
        kiln_build(monkeypatch, store_root, context, dockerfile, "-t", "cleanup:1")
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        assert str(store_root) not in mountinfo.read()
    assert not any((store_root / "containers").iterdir())
    assert not any(is_mounted(path) for path in (store_root / "snapshots").iterdir())


def test_the_previous_index_is_loaded_while_the_probe_walks_and_used_by_the_re_run(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context: Path, changes_seen: list[bool]
) -> None:
    """Once the walk meets the edited file's directory, the previous layer's index loads on
    a thread of its own; the re-run takes it from there, and still matches a fresh copy."""
    from builder import stepcommit

    loaded: list[bool] = []
    original = stepcommit.IndexLoad.result

    def spy(self: stepcommit.IndexLoad) -> stepcommit.IndexedLayer | None:
        found = original(self)
        loaded.append(found is not None)
        return found

    monkeypatch.setattr(stepcommit.IndexLoad, "result", spy)
    kiln_build(monkeypatch, store_root, context, DOCKERFILE, "-t", "reuse:1")
    (context / "app/sub/c.txt").write_text("charlie, edited\n")
    kiln_build(monkeypatch, store_root, context, DOCKERFILE, "-t", "reuse:2")
    assert loaded == [True]
    assert changes_seen == [True]
    _assert_a_fresh_copy_gives(
        monkeypatch, store_root, context, DOCKERFILE, _copy_layer(store_root, "reuse:2")[0]
    )


def test_a_directory_only_touched_is_looked_into_and_the_layer_matches_a_fresh_copy(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context: Path, changes_seen: list[bool]
) -> None:
    """app/sub's entries are the same (a new time is not in a digest), but its stat
    fingerprint is not: it is not passed over as clean, and c.txt gets its new time."""
    kiln_build(monkeypatch, store_root, context, DOCKERFILE, "-t", "reuse:1")
    (context / "app/a.txt").write_text("alpha, edited\n")
    os.utime(context / "app/sub/c.txt", ns=(MTIME_NS, MTIME_NS))
    kiln_build(monkeypatch, store_root, context, DOCKERFILE, "-t", "reuse:2")
    assert changes_seen == [True]
    diff_id, second = _copy_layer(store_root, "reuse:2")
    assert os.lstat(second / "app/sub/c.txt").st_mtime_ns == MTIME_NS
    _assert_a_fresh_copy_gives(monkeypatch, store_root, context, DOCKERFILE, diff_id)


def test_inputs_stored_whole_by_an_earlier_kiln_still_serve_a_re_run(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context: Path, changes_seen: list[bool]
) -> None:
    """A store whose records keep each input's files in one map (as kiln stored them before
    it kept them a directory at a time): the miss still names the file, and the re-run
    still copies only it."""
    from cache import records

    kiln_build(monkeypatch, store_root, context, DOCKERFILE, "-t", "reuse:1")
    with Store.open(store_root) as store:
        meta = store.meta
        for digest in meta.keys(records.INPUT_SETS_NAMESPACE):
            stored = records.stored_inputs(meta, {"inputs": {"context": digest}})["context"]
            meta.put_value(records.INPUTS_NAMESPACE, digest, stored.files())
            meta.delete_value(records.INPUT_SETS_NAMESPACE, digest)
    (context / "app/sub/d.txt").write_text("delta, edited\n")
    results = kiln_build(monkeypatch, store_root, context, DOCKERFILE, "-t", "reuse:2")
    copy = next(result for result in results if result.name.startswith("COPY"))
    assert copy.reason == "file app/sub/d.txt changed"
    assert changes_seen == [True]
    diff_id, second = _copy_layer(store_root, "reuse:2")
    assert (second / "app/sub/d.txt").read_text() == "delta, edited\n"
    _assert_a_fresh_copy_gives(monkeypatch, store_root, context, DOCKERFILE, diff_id)
