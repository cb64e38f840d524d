"""--chmod values: octal replaces the rwx bits, symbolic clauses follow chmod(1)."""

from __future__ import annotations

import pytest

from builder.errors import DockerfileError
from builder.fileops.chmod import parse_chmod


@pytest.mark.parametrize(
    ("text", "mode", "is_dir", "expected"),
    [
        ("755", 0o644, False, 0o755),
        ("0640", 0o777, False, 0o640),
        ("0", 0o755, True, 0o000),
        ("755", 0o4644, False, 0o4755),  # the source's setuid bit stays, as in BuildKit
        ("u+x", 0o644, False, 0o744),
        ("g-w", 0o664, False, 0o644),
        ("o=r", 0o640, False, 0o644),
        ("u+x,g-w,o=r", 0o660, False, 0o744),
        ("+x", 0o644, False, 0o755),
        ("a-w", 0o666, False, 0o444),
        ("go-rwx", 0o755, True, 0o700),
        ("a+X", 0o644, False, 0o644),
        ("a+X", 0o644, True, 0o755),
        ("a+X", 0o744, False, 0o755),
        ("u+s", 0o755, False, 0o4755),
        ("g+s", 0o755, True, 0o2755),
        ("+t", 0o777, True, 0o1777),
        ("u+t", 0o755, True, 0o755),
        ("g=u", 0o740, False, 0o770),
        ("o=u-w", 0o640, False, 0o644),
        ("u=rw,go=", 0o777, False, 0o600),
        ("u-x+w", 0o500, False, 0o600),
    ],
)
def test_apply(text: str, mode: int, is_dir: bool, expected: int) -> None:
    assert oct(parse_chmod(text).apply(mode, is_dir=is_dir)) == oct(expected)


@pytest.mark.parametrize("text", ["", "999", "8", "u+q", "z+x", "u", "u+x,", "12345", "+rwxu"])
def test_invalid_values_are_refused(text: str) -> None:
    with pytest.raises(DockerfileError, match="invalid chmod parameter"):
        parse_chmod(text)
