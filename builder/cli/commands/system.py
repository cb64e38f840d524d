"""``kiln df``: how much disk the store uses, by kind, like ``docker system df``.

Read-only and lock-free: it counts what is on disk now, so it never waits for a running build
(which holds the store's locks) and may be a moment out of date while one writes.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from builder.cli.commands.images import open_store
from builder.lazyclasses import dataclass
from builder.progress.units import human_size

#: The build cache's records in the metadata store (see ``cache/records.py``).
if TYPE_CHECKING:
    from builder.store import Store

CACHE_RECORDS_NAMESPACE = "cache"


@dataclass(frozen=True)
class UsageLine:
    """One kind of thing in the store: how many there are and the bytes they hold (if known)."""

    kind: str
    count: int
    size: int | None


def store_usage(store: Store) -> list[UsageLine]:
    """Images, blobs, snapshots, build containers, cache mounts and cache records, in that order.

    Sizes are apparent sizes (what the files hold), each hard-linked inode counted once.
    Snapshot sizes come from their records when present, since walking them is slow.
    """
    blob_digests = list(store.blobs.digests())
    recorded = {record.chain_id: record.size for record in store.meta.snapshots()}
    snapshots = store.snapshots.directories()
    snapshot_bytes = sum(
        recorded[chain_id] if chain_id in recorded else tree_size(store.snapshots.path(chain_id))
        for chain_id in snapshots
    )
    containers = _entries(store.root / "containers")
    cache_mounts = _entries(store.root / "cache-mounts")
    return [
        UsageLine("Images", len(store.meta.images()), None),
        UsageLine("Blobs", len(blob_digests), sum(store.blobs.disk_size(digest) for digest in blob_digests)),
        UsageLine("Snapshots", len(snapshots), snapshot_bytes),
        UsageLine("Containers", len(containers), sum(tree_size(entry) for entry in containers)),
        UsageLine("Cache mounts", len(cache_mounts), sum(tree_size(entry) for entry in cache_mounts)),
        UsageLine("Build cache records", len(store.meta.keys(CACHE_RECORDS_NAMESPACE)), None),
    ]


def tree_size(root: Path) -> int:
    """Bytes of the regular files and links under ``root``, each inode once; entries that
    vanish while walking (a build finishing) are skipped."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for directory, _subdirs, files in os.walk(root):
        for name in files:
            try:
                status = os.lstat(os.path.join(directory, name))
            except OSError:
                continue
            identity = (status.st_dev, status.st_ino)
            if status.st_nlink > 1:
                if identity in seen:
                    continue
                seen.add(identity)
            total += status.st_size
    return total


def _entries(directory: Path) -> list[Path]:
    from builder.durable import TEMP_PREFIX

    try:
        return sorted(entry for entry in directory.iterdir() if not entry.name.startswith(TEMP_PREFIX))
    except FileNotFoundError:
        return []


def run_df(args: argparse.Namespace) -> int:
    from builder.progress.tables import Column, render_table

    with open_store(args) as store:
        usage = store_usage(store)
    columns = [
        Column("TYPE", key="Type"),
        Column("TOTAL", key="Total", justify="right"),
        Column("SIZE", key="Size", justify="right"),
    ]
    rows: list[list[Any]] = []
    for line in usage:
        shown_size: int | str | None = line.size
        if args.format != "json":
            shown_size = "-" if line.size is None else human_size(line.size)
        rows.append([line.kind, line.count, shown_size])
    render_table(columns, rows, stream=sys.stdout, format=args.format)
    return 0


def register(subparsers: Any) -> None:
    """Add ``kiln df``."""
    parser = subparsers.add_parser(
        "df",
        help="show the store's disk usage",
        description="Show how much disk the store uses: images, blobs, unpacked snapshots, build "
        "containers, cache mounts and build cache records.",
    )
    parser.add_argument(
        "--format",
        choices=("table", "json"),
        default="table",
        help="table (default: a table on a terminal, plain columns otherwise) or json (one object a line)",
    )
    parser.set_defaults(handler=run_df)
