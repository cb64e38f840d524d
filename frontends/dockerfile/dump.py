"""BuildKit's AST dump format (the parser's ``result`` files), for conformance and ``kiln debug ast``.

One ``(keyword ["--flag" ...] "arg" ...)`` line per instruction, every string quoted the way
Go's ``strconv.Quote`` quotes it (corpus README §1.2, §1.3).
"""

from __future__ import annotations

from frontends.dockerfile.ast import Dockerfile, Node

_NAMED_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    '"': '\\"',
    "\\": "\\\\",
}


def _quote_char(char: str) -> str:
    named = _NAMED_ESCAPES.get(char)
    if named is not None:
        return named
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:
        # a byte that was not UTF-8, kept by surrogateescape decoding
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    if 0xD800 <= code <= 0xDFFF:
        return "\\ufffd"
    # Python's printable set equals Go's unicode.IsPrint: L, M, N, P, S and the ASCII space.
    if char.isprintable():
        return char
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def go_quote(text: str) -> str:
    """Go's ``strconv.Quote`` of ``text`` (invalid UTF-8 bytes given as surrogate escapes)."""
    return '"' + "".join(_quote_char(char) for char in text) + '"'


def dump_node(node: Node) -> str:
    """One instruction in BuildKit's format, without the surrounding parentheses."""
    text = node.keyword
    if node.flags:
        text += " [" + " ".join(go_quote(flag) for flag in node.flags) + "]"
    for value in node.args:
        text += " " + go_quote(value)
    if node.child is not None:
        text += " (" + dump_node(node.child) + ")"
    return text


def dump(df: Dockerfile) -> str:
    """The whole file in BuildKit's ``result`` format, without the final newline."""
    return "\n".join(f"({dump_node(node)})" for node in df.nodes)
