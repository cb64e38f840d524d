"""Which ignore file filters a build context, as BuildKit picks it.

In a module of its own that loads nothing but ``os``: the context scan's helper process
(:mod:`cache.prescan`) asks it before it loads anything else, and when there is no ignore
file it needs no pattern matcher, nor the modules that make one.
"""

from __future__ import annotations

import os

IGNORE_FILE_NAME = ".dockerignore"


def ignore_file_candidates(root: str, dockerfile: str | None) -> list[str]:
    """Where the ignore file may be, first found wins: ``<Dockerfile name>.dockerignore``
    beside the Dockerfile, then ``<root>/.dockerignore``."""
    candidates = [os.path.join(root, IGNORE_FILE_NAME)]
    if dockerfile is not None:
        candidates.insert(0, f"{dockerfile}{IGNORE_FILE_NAME}")
    return candidates


def find_ignore_file(root: str, dockerfile: str | None) -> str | None:
    """The ignore file that filters the context at ``root`` built with ``dockerfile``, if any."""
    return next((path for path in ignore_file_candidates(root, dockerfile) if os.path.isfile(path)), None)
