"""How a context input's files differ from the previous record's, found a directory at a time.

A missed ``COPY`` of a large context is compared with the last record of its step three
times over: to say which file changed (:mod:`cache.explain`), to tell whether the previous
layer can be taken over (:mod:`builder.fileops.donor`), and to find what to write into it
(:mod:`builder.fileops.changeset`). Made file by file, each of those passes went over all
20,000 entries of the context. The walk keeps the hashed lines by directory, and the record
keeps a digest per directory (:func:`cache.records.save_input_groups`), so here only the
directories whose digest differs are split into files and compared; the others are the
same, entry for entry.

A directory whose stat fingerprint (names, and every entry's stat keys with its inode and
change time) is also the one recorded is *clean*: nothing in it was touched since the walk
that recorded it, so the previous layer's copy of its entries is what a copy would write.
The fingerprints are kept once per input digest, by the first build that missed with it,
which may be older than the previous layer; matched now, they still mean that nothing was
touched since that earlier walk, and so not before the previous layer was copied either:
change times only move forward, and a write too close to a walk to change any stat key
changes the digest (the stat cache reads such a file again).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from cache.contenthash import SourceDigest
from cache.explain import changed_files
from cache.records import StoredInput


class FileChanges:
    """One input's selection now (``new``) against what the previous record stored (``old``)."""

    def __init__(self, new: SourceDigest, old: StoredInput) -> None:
        self.new = new
        self.old = old
        self._old_groups: dict[str, Mapping[str, str]] = {}

    @functools.cached_property
    def changed_groups(self) -> list[str]:
        """The groups (directories, and ``""`` for the top) whose entries differ in any way,
        or that are only in one of the two; every group when the old side has none."""
        new_groups = self.new.group_digests
        old_groups = self.old.groups
        if old_groups is None:
            return list(new_groups)
        changed = [group for group, digest in new_groups.items() if old_groups.get(group) != digest]
        return changed + [group for group in old_groups if group not in new_groups]

    def same(self, group: str) -> bool:
        """Whether ``group``'s entries are the previous record's, each the same."""
        old_groups = self.old.groups
        return old_groups is not None and old_groups.get(group) == self.new.group_digests.get(group, "")

    def clean(self, group: str) -> bool:
        """Whether ``group`` is a directory with the same entries and the same stat
        fingerprint as recorded: nothing in it was touched since."""
        if not self.same(group):
            return False
        fingerprint = self.new.fingerprints.get(group)
        return fingerprint is not None and self.old.fingerprints.get(group) == fingerprint

    def new_files(self, group: str) -> Mapping[str, str]:
        """This selection's short digests of ``group``'s entries."""
        return self.new.files_of(group)

    def old_files(self, group: str) -> Mapping[str, str]:
        """The previous record's short digests of ``group``'s entries (as stored before
        directories were: of every entry, which serves lookups by name just as well)."""
        if self.same(group):
            return self.new.files_of(group)
        if self.old.groups is None:
            return self.old.flat or {}
        found = self._old_groups.get(group)
        if found is None:
            digest = self.old.groups.get(group)
            found = self.old.load_group(digest) if digest is not None else {}
            self._old_groups[group] = found
        return found

    @functools.cached_property
    def differences(self) -> list[tuple[str, str]]:
        """``(path, "changed" | "added" | "removed")`` for each file that differs, in path
        order (what an explanation names)."""
        if self.old.groups is None:
            return list(changed_files(self.old.flat or {}, self.new.files))
        found: list[tuple[str, str]] = []
        for group in self.changed_groups:
            found += changed_files(self.old_files(group), self.new.files_of(group))
        return sorted(found)

    @property
    def removed(self) -> bool:
        """Whether a file of the previous selection is not in this one."""
        return any(how == "removed" for _path, how in self.differences)

    @property
    def any_unchanged(self) -> bool:
        """Whether any file is the same in both."""
        if self.old.groups is None:
            old = self.old.flat or {}
            return any(old.get(name) == digest for name, digest in self.new.files.items())
        if any(self.same(group) and self.new.files_of(group) for group in self.new.groups):
            return True
        for group in self.changed_groups:
            old = self.old_files(group)
            if any(old.get(name) == digest for name, digest in self.new.files_of(group).items()):
                return True
        return False

    def unchanged_names(self) -> list[str]:
        """Every name whose file is the same in both (made for the whole selection)."""
        old = self.old.files()
        return [name for name, digest in self.new.files.items() if old.get(name) == digest]

    def touched(self) -> frozenset[str]:
        """The names that differ: changed, added or removed."""
        return frozenset(path for path, _how in self.differences)
