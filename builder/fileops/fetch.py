"""ADD of an http(s) URL: download one file, as BuildKit's HTTP source does.

The file is named after the last segment of the URL's path (``__unnamed__`` when there is
none), written with mode ``0600`` and timed by the response's ``Last-Modified`` header when
it has one. ``--checksum=sha256:<hex>`` is checked against the bytes received before the
file is used. A URL source is never unpacked, even when it is an archive.
"""

from __future__ import annotations

import email.utils
import hashlib
import os
import posixpath
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from builder.errors import BuildError
from builder.lazyclasses import dataclass

UNNAMED = "__unnamed__"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FetchedFile:
    """A downloaded file in a scratch directory, and the name ADD gives it."""

    path: Path
    name: str


def file_name_for(url: str) -> str:
    """The name BuildKit gives a downloaded file: the URL path's last segment."""
    base = posixpath.basename(urllib.parse.urlsplit(url).path)
    return base if base not in ("", ".", "/", "..") else UNNAMED


def fetch_url(url: str, into: Path, *, checksum: str | None = None, timeout: float = 60.0) -> FetchedFile:
    """Download ``url`` into the directory ``into``; verify ``checksum`` when given."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise BuildError(f"unsupported URL scheme in {url}")
    algorithm, _, expected = (checksum or "").partition(":")
    if checksum and (algorithm not in ("sha256", "sha384", "sha512") or not expected):
        raise BuildError(f"invalid checksum {checksum!r}: expected <algorithm>:<hex>")
    name = file_name_for(url)
    target = into / name
    digest = hashlib.new(algorithm or "sha256")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(target, "wb") as writer:
            last_modified = response.headers.get("Last-Modified")
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                writer.write(chunk)
    except (urllib.error.URLError, OSError) as err:
        raise BuildError(f"failed to fetch {url}: {err}") from err
    if checksum and digest.hexdigest() != expected.lower():
        actual = f"{algorithm}:{digest.hexdigest()}"
        raise BuildError(f"digest mismatch for {url}: expected {checksum}, got {actual}")
    os.chmod(target, 0o600)
    if last_modified:
        try:
            modified = email.utils.parsedate_to_datetime(last_modified).timestamp()
        except (TypeError, ValueError):
            modified = None
        if modified is not None:
            os.utime(target, (modified, modified))
    return FetchedFile(path=target, name=name)
