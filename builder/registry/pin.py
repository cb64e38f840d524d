"""``kiln pin``: rewrite each image a Dockerfile names to ``name:tag@sha256:…`` as resolved now.

dockerfile-parse finds the ``FROM`` and ``COPY --from`` instructions (continuations,
comments and the escape directive included); the image word is then replaced in the
instruction's own lines, so comments, spacing and line breaks stay as written. Stage names,
stage numbers, ``scratch`` and words that still hold a variable (``$BASE``) are left alone:
they name no image until a build expands them. The digest pinned is the one the registry
serves for the tag (the index digest for a multi-platform image), as ``docker pull`` prints.
"""

from __future__ import annotations

import io
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dockerfile_parse import DockerfileParser

from builder.errors import UsageError
from builder.lazyclasses import dataclass
from builder.oci.reference import Reference, parse_reference

Resolve = Callable[[Reference], str]


@dataclass(frozen=True)
class Pin:
    """One image word of the Dockerfile: where it is, as written, and as it should read."""

    line: int
    written: str
    pinned: str

    @property
    def stale(self) -> bool:
        return self.written != self.pinned


def plan_pins(text: str, resolve: Resolve) -> list[Pin]:
    """Every image word of ``text`` with its pinned form (``line`` counts from 1)."""
    pins: list[Pin] = []
    stage_names: set[str] = set()
    for instruction in _instructions(text):
        kind = instruction["instruction"]
        words = str(instruction["value"]).split()
        image: str | None = None
        if kind == "FROM":
            plain = [word for word in words if not word.startswith("--")]
            image = plain[0] if plain else None
            if len(plain) >= 3 and plain[1].lower() == "as":
                stage_names.add(plain[2].lower())
        elif kind == "COPY":
            image = next((word[len("--from=") :] for word in words if word.startswith("--from=")), None)
        if image is None or not _names_an_image(image, stage_names):
            continue
        pins.append(Pin(int(instruction["startline"]) + 1, image, pinned_form(image, resolve)))
    return pins


def pinned_form(written: str, resolve: Resolve) -> str:
    """``written`` with its tag kept (``latest`` when none) and the current digest set; a
    digest without a tag names no moving target and is kept as written."""
    reference = parse_reference(written)
    if reference.tag is None:
        return written
    base = written.split("@", 1)[0]
    if ":" not in base.rsplit("/", 1)[-1]:
        base += f":{reference.tag}"
    return f"{base}@{resolve(reference.with_tag(reference.tag))}"


def rewrite(text: str, pins: list[Pin]) -> str:
    """``text`` with every stale pin's word replaced in its own instruction's lines."""
    lines = text.splitlines(keepends=True)
    by_start = {int(item["startline"]): int(item["endline"]) for item in _instructions(text)}
    for pin in pins:
        if not pin.stale:
            continue
        start = pin.line - 1
        word = re.compile(rf"(?<=[\s=]){re.escape(pin.written)}(?=\s|$)")
        for number in range(start, by_start.get(start, start) + 1):
            replaced, count = word.subn(pin.pinned, lines[number], count=1)
            if count:
                lines[number] = replaced
                break
    return "".join(lines)


def pin_dockerfile(path: Path, resolve: Resolve, *, check: bool = False) -> list[Pin]:
    """Pin ``path`` in place (atomically) unless ``check``; return every pin found."""
    try:
        text = path.read_text()
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror}") from err
    pins = plan_pins(text, resolve)
    if not check and any(pin.stale for pin in pins):
        temp_path = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}")
        try:
            temp_path.write_text(rewrite(text, pins))
            os.chmod(temp_path, path.stat().st_mode & 0o7777)
            os.replace(temp_path, path)
        finally:
            temp_path.unlink(missing_ok=True)
    return pins


def _instructions(text: str) -> list[dict[str, Any]]:
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode()), env_replace=False)
    return [item for item in parser.structure if item["instruction"] in ("FROM", "COPY")]


def _names_an_image(word: str, stage_names: set[str]) -> bool:
    lowered = word.lower()
    return not (lowered == "scratch" or lowered in stage_names or word.isdigit() or "$" in word)
