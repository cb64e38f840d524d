"""Per-instruction argument rules of BuildKit's parser: text after the keyword → argument strings.

Each rule takes the instruction's argument text (already trimmed, flags removed) and the
escape token, and returns :class:`Arguments`. The rules, the table that picks one per keyword
and their Go-specific corners (byte-wise scanning, Go's JSON decoder) follow the corpus README
§1.2 and §6.6. Errors are raised as :class:`~builder.errors.DockerfileError` without a span;
the parser adds the location.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable

from builder.errors import DockerfileError
from builder.lazyclasses import dataclass
from frontends.dockerfile.lines import GO_SPACE, go_trim_left_space

NOT_STRING_ARRAY = "when using JSON array syntax, arrays must be comprised of strings only"

#: BuildKit's ``reWhitespace``: the separator for FROM/EXPOSE pieces and the legacy ENV form.
_WHITESPACE_RE = re.compile(r"[\t\v\f\r ]+")
_SURROGATE_RE = "[\ud800-\udfff]"


def _replace_undecodable(text: str) -> str:
    """``text`` with each byte that was not UTF-8 (a surrogate escape) as U+FFFD; ASCII text
    is returned as it is, without compiling the pattern (it is most Dockerfiles)."""
    return text if text.isascii() else re.sub(_SURROGATE_RE, "\ufffd", text)


@dataclass(frozen=True)
class Arguments:
    """What a rule made of the text: argument strings, and whether they came from JSON."""

    values: tuple[str, ...] = ()
    json_form: bool = False


def _to_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _from_bytes(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _is_go_space_byte(byte: int) -> bool:
    """``unicode.IsSpace(rune(b))`` for one byte, as BuildKit's byte-wise loops ask it."""
    return chr(byte) in GO_SPACE


def extract_builder_flags(text: str) -> tuple[str, tuple[str, ...]]:
    """Split leading ``--flag`` words off ``text``: ``(rest, flags)``.

    Scans bytes as BuildKit does: quotes are removed, a backslash keeps the next byte, and a
    bare ``--`` ends the flags and is dropped. Each byte of a flag becomes the character with
    that code (Go's ``string(rune(b))``), so non-ASCII flag text comes out Latin-1 decoded.
    """
    line = _to_bytes(text)
    flags: list[str] = []
    word: list[str] = []
    blank_ok = False
    quote = 0
    phase = "spaces"
    pos = 0
    while pos <= len(line):
        at_end = pos == len(line)
        byte = line[pos] if not at_end else 0
        if phase == "spaces":
            if at_end:
                break
            if _is_go_space_byte(byte):
                pos += 1
                continue
            if byte != ord("-") or pos + 1 == len(line) or line[pos + 1] != ord("-"):
                return _from_bytes(line[pos:]), tuple(flags)
            phase = "word"
        if at_end:
            flag = "".join(word)
            if flag != "--" and (blank_ok or flag):
                flags.append(flag)
            break
        if phase == "word":
            if _is_go_space_byte(byte):
                phase = "spaces"
                flag = "".join(word)
                if flag == "--":
                    return _from_bytes(line[pos:]), tuple(flags)
                if blank_ok or flag:
                    flags.append(flag)
                word, blank_ok = [], False
            elif byte in (ord("'"), ord('"')):
                quote, blank_ok, phase = byte, True, "quote"
            elif byte == ord("\\"):
                if pos + 1 < len(line):
                    pos += 1
                    word.append(chr(line[pos]))
            else:
                word.append(chr(byte))
        elif byte == quote:
            phase = "word"
        elif byte == ord("\\"):
            if pos + 1 == len(line):
                phase = "word"
            else:
                pos += 1
                word.append(chr(line[pos]))
        else:
            word.append(chr(byte))
        pos += 1
    return "", tuple(flags)


def parse_words(text: str, escape: str = "\\") -> list[str]:
    """Split ENV/LABEL/ARG text into words, keeping quotes and escape tokens in them.

    Whitespace separates words; ``'`` or ``"`` opens a section that may hold whitespace; the
    escape token keeps the next character (except inside ``'...'``); a final escape token is
    dropped. Bytes that are not UTF-8 become U+FFFD, as Go's rune decoding makes them.
    """
    text = _replace_undecodable(text)
    words: list[str] = []
    word = ""
    blank_ok = False
    quote = ""
    phase = "spaces"
    pos = 0
    while pos <= len(text):
        at_end = pos == len(text)
        char = "" if at_end else text[pos]
        if phase == "spaces":
            if at_end:
                break
            if char in GO_SPACE:
                pos += 1
                continue
            phase = "word"
        if at_end:
            if blank_ok or word:
                words.append(word)
            break
        if phase == "word":
            if char in GO_SPACE:
                phase = "spaces"
                if blank_ok or word:
                    words.append(word)
                word, blank_ok = "", False
                pos += 1
                continue
            if char in ("'", '"'):
                quote, blank_ok, phase = char, True, "quote"
            if char == escape:
                if pos + 1 == len(text):
                    pos += 1
                    continue
                word += char
                pos += 1
                char = text[pos]
            word += char
        else:
            if char == quote:
                phase = "word"
            if char == escape and quote != "'":
                if pos + 1 == len(text):
                    phase = "word"
                    pos += 1
                    continue
                word += char
                pos += 1
                char = text[pos]
            word += char
        pos += 1
    return words


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _go_float(text: str) -> float:
    """Go decodes every JSON number into a float64 and fails on overflow."""
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text} overflows float64")
    return value


def parse_json_array(text: str) -> Arguments | None:
    """The strings of a JSON array, None when ``text`` is not one, an error for non-strings.

    Mirrors Go's ``json.Unmarshal`` into ``[]interface{}``: no NaN/Infinity, numbers must fit a
    float64, a non-array value is "not JSON form", and invalid UTF-8 or lone surrogates in a
    string become U+FFFD.
    """
    text = go_trim_left_space(text)
    if not text.startswith("["):
        return None
    try:
        decoded = json.loads(
            text, parse_constant=_reject_constant, parse_float=_go_float, parse_int=_go_float
        )
    except (ValueError, RecursionError):
        return None
    if not isinstance(decoded, list):
        return None
    if not all(isinstance(item, str) for item in decoded):
        raise DockerfileError(NOT_STRING_ARRAY)
    return Arguments(tuple(_replace_undecodable(item) for item in decoded), json_form=True)


def whitespace_separated(text: str, escape: str = "\\") -> Arguments:
    """FROM, EXPOSE: pieces between runs of ``[ \\t\\v\\f\\r]``; quotes are not special."""
    if not text:
        return Arguments()
    return Arguments(tuple(_WHITESPACE_RE.split(text)))


def single_string(text: str, escape: str = "\\") -> Arguments:
    """MAINTAINER, USER, WORKDIR, STOPSIGNAL: the whole text as one argument."""
    return Arguments((text,)) if text else Arguments()


def maybe_json(text: str, escape: str = "\\") -> Arguments:
    """RUN, CMD, ENTRYPOINT, SHELL: a JSON array of strings, else the whole text."""
    if not text:
        return Arguments()
    return parse_json_array(text) or Arguments((text,))


def maybe_json_to_list(text: str, escape: str = "\\") -> Arguments:
    """ADD, COPY, VOLUME: a JSON array of strings, else whitespace-separated pieces."""
    return parse_json_array(text) or whitespace_separated(text)


def _name_value(text: str, escape: str, keyword: str) -> Arguments:
    """ENV and LABEL: ``key, value, separator`` triples, legacy ``KEY value`` form included."""
    words = parse_words(text, escape)
    if not words:
        return Arguments()
    if "=" not in words[0]:
        parts = _WHITESPACE_RE.split(text, maxsplit=1)
        if len(parts) < 2:
            raise DockerfileError(f"{keyword} must have two arguments")
        return Arguments((parts[0], parts[1], ""))
    triples: list[str] = []
    for word in words:
        if "=" not in word:
            raise DockerfileError(
                f'Syntax error - can\'t find = in "{word}". Must be of the form: name=value'
            )
        key, value = word.split("=", 1)
        triples += [key, value, "="]
    return Arguments(tuple(triples))


def env_pairs(text: str, escape: str = "\\") -> Arguments:
    """ENV arguments (see :func:`_name_value`)."""
    return _name_value(text, escape, "ENV")


def label_pairs(text: str, escape: str = "\\") -> Arguments:
    """LABEL arguments (see :func:`_name_value`)."""
    return _name_value(text, escape, "LABEL")


def arg_words(text: str, escape: str = "\\") -> Arguments:
    """ARG: one argument per word, ``=`` and quotes kept."""
    return Arguments(tuple(parse_words(text, escape)))


def healthcheck(text: str, escape: str = "\\") -> Arguments:
    """HEALTHCHECK: the first word (the type, unchecked here), then the rest as for CMD.

    The split is byte-wise, as in BuildKit, so bytes 0x85 and 0xA0 also count as spaces.
    """
    raw = _to_bytes(text)
    sep = 0
    while sep < len(raw) and not _is_go_space_byte(raw[sep]):
        sep += 1
    if sep == 0:
        return Arguments()
    rest = sep
    while rest < len(raw) and _is_go_space_byte(raw[rest]):
        rest += 1
    command = maybe_json(_from_bytes(raw[rest:]), escape)
    return Arguments((_from_bytes(raw[:sep]), *command.values), command.json_form)


def no_arguments_kept(text: str, escape: str = "\\") -> Arguments:
    """Unknown keywords: one empty argument; the unknown-instruction error comes later."""
    return Arguments(("",))


ArgumentRule = Callable[[str, str], Arguments]

#: Keyword (lower case) → its argument rule. ONBUILD is handled by the parser (a child node).
ARGUMENT_RULES: dict[str, ArgumentRule] = {
    "add": maybe_json_to_list,
    "arg": arg_words,
    "cmd": maybe_json,
    "copy": maybe_json_to_list,
    "entrypoint": maybe_json,
    "env": env_pairs,
    "expose": whitespace_separated,
    "from": whitespace_separated,
    "healthcheck": healthcheck,
    "label": label_pairs,
    "maintainer": single_string,
    "run": maybe_json,
    "shell": maybe_json,
    "stopsignal": single_string,
    "user": single_string,
    "volume": maybe_json_to_list,
    "workdir": single_string,
}
