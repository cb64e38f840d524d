"""``COPY --chmod`` / ``ADD --chmod``: an octal mode or chmod(1)'s symbolic clauses.

An octal value replaces the permission bits (``rwx`` for user, group, other) and keeps the
source's setuid/setgid/sticky bits, as BuildKit's copier does (``mode & ~0o777 | value``).
Symbolic modes (``u+x,g-w,o=r``, accepted by the Dockerfile frontend since 1.14) follow
chmod(1) without a umask: an omitted ``who`` means ``a``, ``X`` adds execute only to a
directory or to a file that already has an execute bit, ``s`` and ``t`` are the special
bits, and ``u``/``g``/``o`` after an operator copy that class's current bits.
"""

from __future__ import annotations

import re

from builder.errors import DockerfileError
from builder.lazyclasses import dataclass

_CLASS_SHIFT = {"u": 6, "g": 3, "o": 0}
_SETID_BIT = {"u": 0o4000, "g": 0o2000}
_STICKY_BIT = 0o1000
_CLAUSE = re.compile(r"([ugoa]*)((?:[-+=](?:[ugo]|[rwxXst]*))+)")
_ACTION = re.compile(r"([-+=])([ugo]|[rwxXst]*)")


@dataclass(frozen=True)
class _Clause:
    """One comma-separated part of a symbolic mode: who, then operator/permission pairs."""

    who: str
    actions: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ModeChange:
    """A parsed ``--chmod`` value; :meth:`apply` maps a source mode to the copied one."""

    text: str
    octal: int | None = None
    clauses: tuple[_Clause, ...] = ()

    def apply(self, mode: int, *, is_dir: bool) -> int:
        """The permission and special bits (``0o7777``) a copied entry gets."""
        mode &= 0o7777
        if self.octal is not None:
            return (mode & ~0o777) | (self.octal & 0o777)
        for clause in self.clauses:
            mode = _apply_clause(clause, mode, is_dir=is_dir)
        return mode


def parse_chmod(text: str) -> ModeChange:
    """Parse ``--chmod``; raise :class:`DockerfileError` for a value chmod(1) would refuse."""
    if re.fullmatch(r"[0-7]{1,4}", text):
        return ModeChange(text=text, octal=int(text, 8))
    clauses: list[_Clause] = []
    for part in text.split(","):
        matched = _CLAUSE.fullmatch(part)
        if matched is None:
            raise DockerfileError(f"invalid chmod parameter {text!r}: neither octal nor symbolic")
        who, actions = matched.groups()
        clauses.append(_Clause(who=who, actions=tuple(_ACTION.findall(actions))))
    return ModeChange(text=text, clauses=tuple(clauses))


def _apply_clause(clause: _Clause, mode: int, *, is_dir: bool) -> int:
    classes = "ugo" if clause.who in ("", "a") or "a" in clause.who else clause.who
    sticky_allowed = clause.who == "" or "a" in clause.who or "o" in clause.who
    for operator, perms in clause.actions:
        triple, special = _requested_bits(perms, mode, is_dir=is_dir)
        bits = 0
        clear = 0
        for name in set(classes):
            shift = _CLASS_SHIFT[name]
            bits |= triple << shift
            clear |= 0o7 << shift
            if "s" in special and name in _SETID_BIT:
                bits |= _SETID_BIT[name]
            if name in _SETID_BIT:
                clear |= _SETID_BIT[name]
        if "t" in special and sticky_allowed:
            bits |= _STICKY_BIT
        if sticky_allowed:
            clear |= _STICKY_BIT
        if operator == "+":
            mode |= bits
        elif operator == "-":
            mode &= ~bits
        else:
            mode = (mode & ~clear) | bits
    return mode


def _requested_bits(perms: str, mode: int, *, is_dir: bool) -> tuple[int, str]:
    """The ``rwx`` triple a permission string asks for, and its special letters (s, t)."""
    if perms in _CLASS_SHIFT:
        return (mode >> _CLASS_SHIFT[perms]) & 0o7, ""
    triple = 0
    if "r" in perms:
        triple |= 0o4
    if "w" in perms:
        triple |= 0o2
    if "x" in perms or ("X" in perms and (is_dir or mode & 0o111)):
        triple |= 0o1
    return triple, "".join(letter for letter in perms if letter in "st")
