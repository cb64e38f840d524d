"""Who a RUN step runs as: ``user[:group]`` resolved against the image's own user database.

The rules are BuildKit's (its ``oci.GetUser`` over runc's ``user.GetExecUser``), so that a
Dockerfile gets the same ids here as under ``docker build``:

* empty means root; a missing or unreadable database then still gives 0:0;
* ``uid:gid`` with both numeric is taken as written, without reading any file and without
  supplementary groups;
* a name must be in ``/etc/passwd`` (else :class:`UserLookupError`); a number need not be;
* a name or number found in ``/etc/passwd`` gives that entry's primary gid and, when no group
  is written, every group in ``/etc/group`` that lists the user's name as supplementary;
* a written group replaces the primary gid: a name must be in ``/etc/group``, a number need not.

The home directory (for ``HOME`` when the environment lacks it) is the passwd entry's of the
final uid, or ``/`` for a uid the image does not list, as runc and crun set it.

The parsers take file contents, so they are pure; :func:`resolve_user_in_root` reads the files
from a root filesystem.
"""

from __future__ import annotations

from pathlib import Path

from builder.errors import KilnError
from builder.lazyclasses import dataclass

MAX_ID = 2**31 - 1


class UserLookupError(KilnError):
    """A user or group name that the image's /etc/passwd or /etc/group does not define."""


@dataclass(frozen=True)
class PasswdEntry:
    """One line of /etc/passwd, the fields kiln uses."""

    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class GroupEntry:
    """One line of /etc/group: its name, gid and the user names listed as members."""

    name: str
    gid: int
    members: tuple[str, ...]


@dataclass(frozen=True)
class ResolvedUser:
    """The process identity for the runtime spec, and the home directory for ``HOME``."""

    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()
    home: str = "/"


def _parse_id(text: str) -> int | None:
    """A decimal id in the valid range, or None when the text is not one."""
    if not text.isdigit():
        return None
    value = int(text)
    return value if value <= MAX_ID else None


def parse_passwd(passwd_text: str) -> list[PasswdEntry]:
    """The well-formed entries of an /etc/passwd, in file order; malformed lines are skipped."""
    entries: list[PasswdEntry] = []
    for line in passwd_text.splitlines():
        fields = line.strip().split(":")
        if len(fields) < 4 or not fields[0] or fields[0].startswith("#"):
            continue
        uid, gid = _parse_id(fields[2]), _parse_id(fields[3])
        if uid is None or gid is None:
            continue
        home = fields[5] if len(fields) > 5 else ""
        entries.append(PasswdEntry(name=fields[0], uid=uid, gid=gid, home=home))
    return entries


def parse_group(group_text: str) -> list[GroupEntry]:
    """The well-formed entries of an /etc/group, in file order; malformed lines are skipped."""
    entries: list[GroupEntry] = []
    for line in group_text.splitlines():
        fields = line.strip().split(":")
        if len(fields) < 3 or not fields[0] or fields[0].startswith("#"):
            continue
        gid = _parse_id(fields[2])
        if gid is None:
            continue
        members = tuple(m for m in fields[3].split(",") if m) if len(fields) > 3 else ()
        entries.append(GroupEntry(name=fields[0], gid=gid, members=members))
    return entries


def _home_of(uid: int, passwd: list[PasswdEntry]) -> str:
    for entry in passwd:
        if entry.uid == uid:
            return entry.home or "/"
    return "/"


def resolve_user(user_spec: str, passwd_text: str | None, group_text: str | None) -> ResolvedUser:
    """Resolve ``user[:group]`` against file contents (None for a file the image lacks)."""
    passwd = parse_passwd(passwd_text or "")
    groups = parse_group(group_text or "")
    user_part, has_group, group_part = user_spec.partition(":")
    if has_group:
        uid, gid = _parse_id(user_part), _parse_id(group_part)
        if uid is not None and gid is not None:
            return ResolvedUser(uid=uid, gid=gid, home=_home_of(uid, passwd))
    if not user_spec:
        try:
            return _resolve_from_files("0", "", passwd, groups)
        except UserLookupError:
            return ResolvedUser(uid=0, gid=0)
    return _resolve_from_files(user_part, group_part, passwd, groups)


def _resolve_from_files(
    user_part: str, group_part: str, passwd: list[PasswdEntry], groups: list[GroupEntry]
) -> ResolvedUser:
    """runc's GetExecUser: first matching passwd entry wins; numbers need no entry."""
    wanted_uid = _parse_id(user_part)
    if wanted_uid is None and user_part.isdigit():
        raise UserLookupError(f"user id {user_part} is out of range")
    matched = next(
        (
            entry
            for entry in passwd
            if (entry.uid == wanted_uid if wanted_uid is not None else entry.name == user_part)
        ),
        None,
    )
    if matched is None and wanted_uid is None:
        raise UserLookupError(f"unable to find user {user_part}: no matching entries in passwd file")
    uid = matched.uid if matched is not None else wanted_uid
    assert uid is not None  # one of the two branches above set it
    gid = matched.gid if matched is not None else 0
    additional_gids: tuple[int, ...] = ()
    if group_part:
        gid = _resolve_group(group_part, groups)
    elif matched is not None:
        additional_gids = tuple(g.gid for g in groups if matched.name in g.members)
    return ResolvedUser(uid=uid, gid=gid, additional_gids=additional_gids, home=_home_of(uid, passwd))


def _resolve_group(group_part: str, groups: list[GroupEntry]) -> int:
    wanted_gid = _parse_id(group_part)
    for group in groups:
        if (group.gid == wanted_gid) if wanted_gid is not None else (group.name == group_part):
            return group.gid
    if wanted_gid is None:
        if group_part.isdigit():
            raise UserLookupError(f"group id {group_part} is out of range")
        raise UserLookupError(f"unable to find group {group_part}: no matching entries in group file")
    return wanted_gid


def _read_in_root(rootfs: Path, path: str) -> str | None:
    """A file of the rootfs, its symlinks resolved inside the rootfs; None when absent."""
    from builder.rootpath import resolve_in_root

    try:
        host_path = resolve_in_root(rootfs, path)
        return host_path.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def resolve_user_in_root(user_spec: str, rootfs: Path) -> ResolvedUser:
    """Resolve ``user[:group]`` against the /etc/passwd and /etc/group inside ``rootfs``."""
    return resolve_user(user_spec, _read_in_root(rootfs, "/etc/passwd"), _read_in_root(rootfs, "/etc/group"))
