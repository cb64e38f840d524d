"""Owners for ``COPY --chown`` and WORKDIR, by BuildKit's file-op rules (not RUN's).

A file op names its owner as ``user[:group]`` and resolves names in the *destination*
image's /etc/passwd and /etc/group. The rule differs from a RUN's user in one place: a
numeric user without a group gives that number as the group too (``--chown=1000`` is
``1000:1000`` even where /etc/passwd does not list 1000), as BuildKit's ``readUser`` does
for an id. A user given by name takes the primary group of its passwd entry.
"""

from __future__ import annotations

from pathlib import Path

from builder.exec.users import resolve_user_in_root


def resolve_owner(spec: str, rootfs: Path) -> tuple[int, int]:
    """``(uid, gid)`` for ``spec`` against ``rootfs``; unknown names raise ``UserLookupError``."""
    user_part, has_group, group_part = spec.partition(":")
    if user_part.isdigit() and not has_group:
        return int(user_part), int(user_part)
    if user_part.isdigit() and group_part.isdigit():
        return int(user_part), int(group_part)
    resolved = resolve_user_in_root(spec, rootfs)
    return resolved.uid, resolved.gid
