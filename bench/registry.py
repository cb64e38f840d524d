#!/usr/bin/env python3
"""Registry transfer speed: ``kiln push``/``kiln pull`` against ``skopeo copy`` on the same image.

Makes an image of ``--layers`` layers (default 4) of ``--layer-size`` bytes each (default
50 MB of random, incompressible content, so every layer is about that size on the wire),
then, against Debian's ``docker-registry`` on loopback:

* push: kiln's :func:`push_image` from its store to a fresh registry, and ``skopeo copy``
  from an OCI layout holding the same blobs to another fresh registry;
* pull: kiln's :func:`pull_image` into an empty store, and ``skopeo copy`` into an empty
  OCI layout, from the same registry.

Everything lives under ``--dir`` (default /dev/shm, a tmpfs), so the disk is not measured.
``--repeat N`` keeps the best of N runs. Prints seconds, MB/s and kiln's time as a ratio
of skopeo's (below 1.0: kiln is faster).

usage: python bench/registry.py [--layers 4] [--layer-size 50M] [--dir DIR] [--repeat N]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from builder.oci import mediatypes
from builder.registry import host_platform, pull_image, push_image
from builder.store import Store, StoredLayer
from tests.fixtures.registry import start_registry

_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(text: str) -> int:
    suffix = text[-1:].upper()
    return int(text[:-1]) * _UNITS[suffix] if suffix in _UNITS else int(text)


def make_image(store: Store, name: str, layers: int, layer_size: int) -> int:
    """Store an image of ``layers`` random layers (gzip level 1); return the bytes on the wire."""
    stored: list[StoredLayer] = []
    for number in range(layers):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
            entry = tarfile.TarInfo(f"data/layer-{number}.bin")
            entry.size = layer_size
            archive.addfile(entry, io.BytesIO(os.urandom(layer_size)))
        layer_tar = buffer.getvalue()
        compressed = gzip.compress(layer_tar, compresslevel=1, mtime=0)
        info = store.blobs.put_bytes(compressed)
        diff_id = "sha256:" + hashlib.sha256(layer_tar).hexdigest()
        stored.append(StoredLayer(info.digest, diff_id, info.size, mediatypes.OCI_LAYER_GZIP))
    platform = host_platform()
    config = {"architecture": platform.architecture, "os": platform.os, "config": {}}
    store.put_image(config, stored, name)
    return sum(layer.size for layer in stored)


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def skopeo(skopeo_binary: str, source: str, destination: str) -> None:
    subprocess.run(
        [skopeo_binary, "--insecure-policy", "copy", "--quiet", "--src-tls-verify=false",
         "--dest-tls-verify=false", source, destination],
        check=True,
    )  # fmt: skip


def run_once(work: Path, layers: int, layer_size: int, skopeo_binary: str) -> dict[str, float]:
    """One round on fresh registries and stores: seconds per operation."""
    seconds: dict[str, float] = {}
    with (
        start_registry(work / "registry-kiln") as kiln_registry,
        start_registry(work / "registry-skopeo") as skopeo_registry,
        Store.open(work / "store-source") as source,
        Store.open(work / "store-pulled") as pulled,
    ):
        ref = f"{kiln_registry.host}/bench/image:1"
        make_image(source, ref, layers, layer_size)
        seconds["push kiln"] = timed(lambda: push_image(source, ref))
        seconds["pull kiln"] = timed(lambda: pull_image(pulled, ref, platform=host_platform()))
        layout = work / "layout"
        seconds["pull skopeo"] = timed(
            lambda: skopeo(skopeo_binary, f"docker://{ref}", f"oci:{layout}:image")
        )
        destination = f"docker://{skopeo_registry.host}/bench/image:1"
        seconds["push skopeo"] = timed(lambda: skopeo(skopeo_binary, f"oci:{layout}:image", destination))
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--layer-size", type=parse_size, default=50_000_000)
    parser.add_argument("--dir", default="/dev/shm" if Path("/dev/shm").is_dir() else None)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    skopeo_binary = shutil.which("skopeo")
    if skopeo_binary is None or shutil.which("docker-registry") is None:
        print("bench/registry.py needs skopeo and docker-registry (scripts/install)", file=sys.stderr)
        return 1
    best: dict[str, float] = {}
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="kiln-bench-registry-", dir=args.dir) as work:
            for name, value in run_once(Path(work), args.layers, args.layer_size, skopeo_binary).items():
                best[name] = min(value, best.get(name, value))
    total_mb = args.layers * args.layer_size / 1e6
    print(
        f"image: {args.layers} layers x {args.layer_size / 1e6:.0f} MB (random, gzip -1), "
        f"best of {args.repeat}"
    )
    print(
        f"{'operation':<8} {'kiln s':>8} {'skopeo s':>9} {'kiln MB/s':>10} "
        f"{'skopeo MB/s':>12} {'kiln/skopeo':>12}"
    )
    for operation in ("push", "pull"):
        kiln, other = best[f"{operation} kiln"], best[f"{operation} skopeo"]
        print(
            f"{operation:<8} {kiln:>8.2f} {other:>9.2f} {total_mb / kiln:>10.0f} "
            f"{total_mb / other:>12.0f} {kiln / other:>12.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
