"""``WWW-Authenticate`` challenges (RFC 7235) as registries send them on a 401.

A registry answers ``/v2/`` or any request without credentials with a challenge naming the
scheme (``Basic`` or ``Bearer``) and, for ``Bearer``, the token endpoint (``realm``), the
``service`` and sometimes the ``scope`` it wants. The parser accepts quoted and bare values
and commas inside quotes, as distribution's ``challenge`` package does; a bare value may
be any run of characters up to a space or comma, since some servers leave URLs unquoted.
"""

from __future__ import annotations

import re
from dataclasses import field

from builder.lazyclasses import dataclass

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_SCHEME = re.compile(rf"\s*({_TOKEN})\s*")
_PARAM = re.compile(r"\s*(" + _TOKEN + r')\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))\s*,?')


@dataclass(frozen=True)
class Challenge:
    """One challenge: the scheme in lower case and its parameters (names in lower case)."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")


def parse_challenges(header: str) -> list[Challenge]:
    """Every challenge in a header value, in order; unparseable tails are ignored."""
    challenges: list[Challenge] = []
    position = 0
    while position < len(header):
        scheme_match = _SCHEME.match(header, position)
        if scheme_match is None:
            break
        scheme = scheme_match.group(1).lower()
        position = scheme_match.end()
        params: dict[str, str] = {}
        while position < len(header):
            param_match = _PARAM.match(header, position)
            if param_match is None:
                break
            name, quoted, bare = param_match.groups()
            params[name.lower()] = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
            position = param_match.end()
        challenges.append(Challenge(scheme, params))
        position = _skip_comma(header, position)
    return challenges


def _skip_comma(header: str, position: int) -> int:
    while position < len(header) and header[position] in " ,":
        position += 1
    return position
