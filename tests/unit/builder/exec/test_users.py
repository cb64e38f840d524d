"""User resolution follows BuildKit's rules (runc's GetExecUser behind oci.GetUser)."""

from __future__ import annotations

import pytest

from builder.exec.users import (
    GroupEntry,
    PasswdEntry,
    ResolvedUser,
    UserLookupError,
    parse_group,
    parse_passwd,
    resolve_user,
)

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
app:x:1000:1000:App:/home/app:/bin/sh
# a comment line
broken line
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
twin:x:1000:7:Second entry for uid 1000:/home/twin:/bin/sh
"""

GROUP = """\
root:x:0:
daemon:x:1:
app:x:1000:
audio:x:29:app,daemon
video:x:44:app
staff:x:50:
nogroup:x:65534:
"""


def test_parse_passwd_keeps_well_formed_entries_in_order() -> None:
    entries = parse_passwd(PASSWD)
    assert [entry.name for entry in entries] == ["root", "daemon", "app", "nobody", "twin"]
    assert entries[2] == PasswdEntry(name="app", uid=1000, gid=1000, home="/home/app")


def test_parse_group_splits_members() -> None:
    entries = parse_group(GROUP)
    assert entries[3] == GroupEntry(name="audio", gid=29, members=("app", "daemon"))
    assert entries[0] == GroupEntry(name="root", gid=0, members=())


@pytest.mark.parametrize(
    ("user_spec", "expected"),
    [
        ("", ResolvedUser(uid=0, gid=0, additional_gids=(), home="/root")),
        ("root", ResolvedUser(uid=0, gid=0, additional_gids=(), home="/root")),
        ("app", ResolvedUser(uid=1000, gid=1000, additional_gids=(29, 44), home="/home/app")),
        ("1000", ResolvedUser(uid=1000, gid=1000, additional_gids=(29, 44), home="/home/app")),
        ("1000:1000", ResolvedUser(uid=1000, gid=1000, additional_gids=(), home="/home/app")),
        ("app:staff", ResolvedUser(uid=1000, gid=50, additional_gids=(), home="/home/app")),
        ("app:4242", ResolvedUser(uid=1000, gid=4242, additional_gids=(), home="/home/app")),
        ("daemon", ResolvedUser(uid=1, gid=1, additional_gids=(29,), home="/usr/sbin")),
        ("4242", ResolvedUser(uid=4242, gid=0, additional_gids=(), home="/")),
        ("4242:4343", ResolvedUser(uid=4242, gid=4343, additional_gids=(), home="/")),
        ("4242:video", ResolvedUser(uid=4242, gid=44, additional_gids=(), home="/")),
        ("nobody", ResolvedUser(uid=65534, gid=65534, additional_gids=(), home="/nonexistent")),
    ],
)
def test_resolve_user(user_spec: str, expected: ResolvedUser) -> None:
    assert resolve_user(user_spec, PASSWD, GROUP) == expected


def test_unknown_user_name_is_an_error() -> None:
    with pytest.raises(UserLookupError, match="unable to find user ghost: no matching entries in passwd"):
        resolve_user("ghost", PASSWD, GROUP)


def test_unknown_group_name_is_an_error() -> None:
    with pytest.raises(UserLookupError, match="unable to find group ghosts: no matching entries in group"):
        resolve_user("app:ghosts", PASSWD, GROUP)


def test_user_name_without_passwd_file_is_an_error() -> None:
    with pytest.raises(UserLookupError, match="unable to find user app"):
        resolve_user("app", None, None)


def test_default_user_without_files_is_root() -> None:
    assert resolve_user("", None, None) == ResolvedUser(uid=0, gid=0, additional_gids=(), home="/")


def test_numeric_user_without_files_is_taken_as_written() -> None:
    assert resolve_user("5:6", None, None) == ResolvedUser(uid=5, gid=6, additional_gids=(), home="/")
    assert resolve_user("5", None, None) == ResolvedUser(uid=5, gid=0, additional_gids=(), home="/")


def test_out_of_range_id_is_an_error() -> None:
    with pytest.raises(UserLookupError, match="out of range"):
        resolve_user("4294967296", PASSWD, GROUP)


def test_first_matching_uid_wins() -> None:
    # uid 1000 is listed twice; the first entry (app) gives gid, groups and home.
    assert resolve_user("1000", PASSWD, GROUP).home == "/home/app"
