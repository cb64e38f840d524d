"""Copying only what changed, into the previous copy's tree taken in place.

A ``COPY`` re-run whose donor tree was taken as its upper dir (:mod:`builder.fileops.donor`)
starts from every file the previous run wrote. The probe holds the digest of each entry of
both selections (path, type, mode, size, content), the context walk the ``lstat`` of each
source, and the previous layer's index the size, time, mode and owner of each regular file
and directory the tree holds. An entry needs writing only when it is new, its digest
changed, or the tree's copy is not what the copier would make of it now (another time, a
mode or owner of ``--chmod``/``--chown``, or no index entry to tell); everything else is in
place already. So the copier is given only those entries, instead of walking, ``lstat``-ing
and comparing all 20,000 files of a large context (0.3 s) to find them.

Nor are the entries compared one by one: a directory whose entries and stat fingerprint are
the ones recorded with the previous run (:meth:`cache.filechanges.FileChanges.clean`) was
not touched since that run's walk, and the previous copy of it is what the copier would
write. A directory whose whole subtree is so is passed over (0.04 s of the 0.06 s this
took); only the directories with a change, and those above them, are looked at entry by
entry.

Directories whose entries were written lose the time the copier gave them (the kernel stamps
a change), and a directory whose own line changed needs its metadata again: both get their
source's metadata once everything below them is written, deepest first, as the copier does.
The directory of the item itself and those above it are :meth:`DonorLayer.restamp_items`'s.
A directory with nothing written below it is named to the layer writer as *clean*
(``DonorLayer.clean_dirs``): its whole subtree is one range of the previous tar.

Anything the digests cannot vouch for sends the copy back to the full walk, before the
tree is touched: a source hard-linked to another (the copier keeps such links), or one the
walk did not see. A source's extended attributes are in neither its digest nor the index
(only files without any are indexed): a file that gained some since the previous run keeps
the tree's copy without them, as a cache hit on an unchanged context would.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from builder.fileops.donor import DonorLayer, matches_key
from builder.fileops.writer import CAN_CHOWN, TreeWriter
from builder.lazyclasses import dataclass

if TYPE_CHECKING:
    from cache.filechanges import FileChanges
    from cache.treewalk import Listing

_FS_ENCODING = sys.getfilesystemencoding()
#: Each directory's entries and their ``lstat``, by its name in the selection.
Listings = Mapping[str, "Listing"]


@dataclass(frozen=True)
class ChangeSet:
    """What a re-run copies, as the probe saw it: how the selection's entries differ from
    the previous run's, a directory at a time, and the context walk's listings."""

    files: FileChanges
    listings: Listings


def copy_changes(writer: TreeWriter, source: str, target: str, item: str, donor: DonorLayer) -> bool:
    """Bring the tree taken in place at ``target`` (the copy's item, a directory, read from
    ``source``) up to date with the selection; false, with nothing done, when the changes
    cannot be told from the digests alone (the caller then copies the usual way)."""
    changes = donor.changes
    below = donor.relative_of(target)
    if changes is None or below is None:
        return False
    plan = _plan(writer, changes, item, below, donor)
    if plan is None:
        return False
    writes, refresh = plan
    donor.note_item(target)
    covered = "\0"  # a directory written whole (new): its entries were written with it
    for rel, info in writes:  # parents first, each right before its entries
        if rel.startswith(covered):
            continue
        writer.copy(f"{source}/{rel}", rel, f"{target}/{rel}", info, nested=True)
        if stat.S_ISDIR(info.st_mode):
            covered = rel + "/"
    files = [rel for rel, info in writes if stat.S_ISREG(info.st_mode)]
    if donor.on_rewritten is not None and len(files) == 1 and len(writes) == 1:
        donor.on_rewritten(_index_key(below, files[0]))
    for rel, info in sorted(refresh.items(), key=lambda item: item[0].count("/"), reverse=True):
        writer.apply_metadata(f"{source}/{rel}", f"{target}/{rel}", info)
    return True


def _index_key(below: str, rel: str, *, directory: bool = False) -> bytes:
    """The layer index's name of ``rel`` (below the item, itself ``below`` the tree's root)."""
    return f"{below}/{rel}{'/' if directory else ''}".encode(_FS_ENCODING, "surrogateescape")


def _plan(
    writer: TreeWriter, changes: ChangeSet, item: str, below: str, donor: DonorLayer
) -> tuple[list[tuple[str, os.stat_result]], dict[str, os.stat_result]] | None:
    """The entries to write (parents first) and the directories to give their metadata
    again; ``None`` when the copy must walk everything.

    A directory whose subtree is clean (:meth:`FileChanges.clean`: not touched since the
    previous run's walk) is passed over whole: its own entry, in its parent's listing, says
    whether the layer writer may name it as one range. Every other directory is one pass
    over its listing, each entry looked up in its selection."""
    index = donor.index
    files = changes.files
    if (
        index is None
        or set(files.new.files_of("")) != {item}
        or set(files.new.groups) - {""} != set(changes.listings)
    ):
        return None  # a selection of more than this one directory's tree
    skip = 0 if item == "." else len(item) + 1
    mode_change = writer.rules.mode_change
    writes: list[tuple[str, os.stat_result]] = []
    refresh: dict[str, os.stat_result] = {}
    kept: list[bytes] = []
    same_dirs: list[str] = []
    passed_over = _clean_subtrees(changes.listings, files, item)
    for directory, listing in changes.listings.items():
        if directory in passed_over:
            continue  # (its entries are not lstat-ed again when the walk did not list them)
        names, stats = listing.names, listing.stats
        in_directory = "" if directory == "." else directory + "/"
        selection, previous = files.new_files(directory), files.old_files(directory)
        met = 0
        for name, info in zip(names, stats, strict=True):
            full = in_directory + name
            digest = selection.get(full)
            if digest is None:
                continue  # not selected (.dockerignore, --exclude)
            if info is None:
                return None
            met += 1
            rel = full[skip:]
            mode = info.st_mode
            is_dir = stat.S_ISDIR(mode)
            if not is_dir and info.st_nlink > 1:
                return None
            key = _index_key(below, rel, directory=is_dir)
            known = index.get(key)
            if known is not None and previous.get(full) == digest:
                bits = stat.S_IMODE(mode)
                if mode_change is not None:
                    bits = mode_change.apply(bits, is_dir=is_dir)
                owner = writer.owner(info) if CAN_CHOWN else None  # (as the writer's own claims)
                if matches_key(known[2], info, bits, owner):
                    if is_dir:
                        same_dirs.append(rel)
                    else:
                        kept.append(key)
                    continue
            if is_dir and known is not None:
                refresh[rel] = info  # there: its metadata only (its entries are met one by one)
            else:
                writes.append((rel, info))  # a new directory is written whole
        if met != len(selection):
            return None  # the walk did not list every selected entry
    writes.sort(key=lambda entry: entry[0].split("/"))
    for rel, _info in writes:
        # Writing an entry stamps its directory's time: the copier's comes back after.
        parent = os.path.dirname(rel)
        if parent and parent not in refresh:
            parent_info = _listed(changes.listings, item, parent)
            if parent_info is None:
                return None
            refresh[parent] = parent_info
    donor.keep(kept)
    donor.clean_dirs = [
        _index_key(below, rel, directory=True) for rel in _untouched(same_dirs, [*writes, *refresh.items()])
    ]
    return writes, refresh


def _clean_subtrees(listings: Listings, files: FileChanges, item: str) -> set[str]:
    """The directories whose whole subtree is clean: each of them, and each directory below
    it, holds the previous run's entries untouched since its walk."""
    clean = {directory for directory in listings if directory != item and files.clean(directory)}
    for directory in listings:
        if directory in clean:
            continue
        above = directory
        while above in listings and above != item:
            clean.discard(above)
            above = above.rpartition("/")[0] if "/" in above else item
    return clean


def _untouched(same_dirs: list[str], touched: list[tuple[str, os.stat_result]]) -> list[str]:
    """The outermost of ``same_dirs`` with nothing written below them: each one's whole
    subtree is the previous layer's, byte for byte, and its tar bytes can be named at once
    (every entry of it is a kept file or an unchanged directory, both indexed: anything
    else, a symlink or a file with extended attributes, is written again)."""
    dirty: set[str] = set()
    for rel, _info in touched:
        while rel and rel not in dirty:
            dirty.add(rel)
            rel = os.path.dirname(rel)
    clean = set(same_dirs) - dirty
    return [rel for rel in clean if os.path.dirname(rel) not in clean]


def _listed(listings: Listings, item: str, rel: str) -> os.stat_result | None:
    """The walk's ``lstat`` of ``rel`` (below the item)."""
    full = rel if item == "." else f"{item}/{rel}"
    directory, _, name = full.rpartition("/")
    listing = listings.get(directory or ".")
    if listing is None:
        return None
    try:
        return listing.stats[listing.names.index(name)]
    except ValueError:
        return None
