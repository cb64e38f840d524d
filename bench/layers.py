#!/usr/bin/env python3
"""Layer writing speed: kiln's writer against ``tar -c | gzip`` and ``tar -c | zstd -T0``.

Makes a tree of ``--size`` bytes (default 1 GiB), half incompressible (random bytes) and
half compressible (text of random words, plus a few thousand small files), then writes it
as a layer with each compression and prints throughput (input MB per wall-clock second),
the compression ratio and how many cores were busy on average (CPU time / wall time).

Each output goes to ``--out-dir`` (default /dev/shm, a tmpfs) so the disk is not measured;
the tree is synced to disk and read from the page cache. ``--repeat N`` keeps the best of N
runs, for a machine that is busy with other work.

usage: python bench/layers.py [--size 256M] [--dir DIR] [--out-dir DIR] [--repeat N] [--keep]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from builder.layers import write_layer
from builder.layers.compression import Compression

_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
_BIG_FILE = 8 << 20
_SMALL_FILE = 4 << 10
_SMALL_FILES = 2000


def parse_size(text: str) -> int:
    """``1G``, ``256M``, ``4096`` → bytes."""
    unit = _UNITS.get(text[-1:].upper())
    return int(text[:-1]) * unit if unit else int(text)


def _text_block(rng: random.Random, size: int) -> bytes:
    words = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10)))
        for _ in range(5000)
    ]
    lines: list[str] = []
    total = 0
    while total < size:
        line = f"{total:012d} " + " ".join(rng.choices(words, k=12)) + "\n"
        lines.append(line)
        total += len(line)
    return "".join(lines).encode()[:size]


def make_tree(root: Path, size: int) -> int:
    """Write the benchmark tree; return the bytes of file content written."""
    rng = random.Random(1)
    half = size // 2
    written = 0
    (root / "random").mkdir(parents=True)
    index = 0
    while written < half:
        chunk = min(_BIG_FILE, half - written)
        (root / "random" / f"blob{index:05d}.bin").write_bytes(os.urandom(chunk))
        written += chunk
        index += 1
    text = _text_block(rng, _BIG_FILE * 2)
    (root / "text" / "small").mkdir(parents=True)
    small_total = min(_SMALL_FILES * _SMALL_FILE, (size - half) // 4)
    for number in range(small_total // _SMALL_FILE):
        start = rng.randrange(len(text) - _SMALL_FILE)
        (root / "text" / "small" / f"f{number:05d}.txt").write_bytes(text[start : start + _SMALL_FILE])
        written += _SMALL_FILE
    index = 0
    while written < size:
        chunk = min(_BIG_FILE, size - written)
        offset = rng.randrange(len(text) - chunk) if chunk < len(text) else 0
        (root / "text" / f"log{index:05d}.txt").write_bytes(text[offset : offset + chunk])
        written += chunk
        index += 1
    return written


@dataclass(frozen=True)
class Result:
    name: str
    seconds: float
    cpu_seconds: float
    output_bytes: int


def _cpu_now() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure(name: str, run: Callable[[Path], None], output: Path) -> Result:
    cpu_before = _cpu_now()
    started = time.perf_counter()
    run(output)
    seconds = time.perf_counter() - started
    result = Result(name, seconds, _cpu_now() - cpu_before, output.stat().st_size)
    output.unlink()
    return result


def kiln_writer(tree: Path, compression: Compression) -> Callable[[Path], None]:
    def run(output: Path) -> None:
        with open(output, "wb") as out:
            write_layer(tree, out, compression=compression)

    return run


def pipeline(tree: Path, compressor: list[str]) -> Callable[[Path], None]:
    def run(output: Path) -> None:
        with open(output, "wb") as out:
            tar = subprocess.Popen(["tar", "-cf", "-", "-C", str(tree), "."], stdout=subprocess.PIPE)
            assert tar.stdout is not None
            if compressor:
                subprocess.run(compressor, stdin=tar.stdout, stdout=out, check=True)
            else:
                shutil.copyfileobj(tar.stdout, out, 1 << 20)
            tar.stdout.close()
            if tar.wait() != 0:
                raise SystemExit("tar failed")

    return run


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="1G", help="tree size, e.g. 256M or 1G (default 1G)")
    parser.add_argument("--dir", default=None, help="where to make the tree (default: a temp dir)")
    parser.add_argument("--out-dir", default="/dev/shm", help="where layers are written (default /dev/shm)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per writer; the best is shown")
    parser.add_argument("--keep", action="store_true", help="keep the tree afterwards")
    args = parser.parse_args()
    size = parse_size(args.size)
    work = Path(args.dir or tempfile.mkdtemp(prefix="kiln-bench-", dir="/var/tmp"))
    tree = work / "tree"
    try:
        print(f"making a {size / 2**20:.0f} MiB tree in {tree} ...", flush=True)
        content = make_tree(tree, size)
        os.sync()
        output = Path(tempfile.mkdtemp(prefix="kiln-bench-", dir=args.out_dir)) / "layer.out"
        runs: list[tuple[str, Callable[[Path], None]]] = [
            ("kiln none", kiln_writer(tree, "none")),
            ("tar -c", pipeline(tree, [])),
            ("kiln gzip", kiln_writer(tree, "gzip")),
            ("tar -c | gzip", pipeline(tree, ["gzip", "-c"])),
            ("kiln zstd", kiln_writer(tree, "zstd")),
            ("tar -c | zstd -T0", pipeline(tree, ["zstd", "-q", "-T0", "-c"])),
        ]
        print(f"{'writer':<20} {'seconds':>8} {'MB/s':>8} {'ratio':>7} {'cores busy':>11}")
        for name, run in runs:
            result = min((measure(name, run, output) for _ in range(args.repeat)), key=lambda r: r.seconds)
            print(
                f"{result.name:<20} {result.seconds:>8.2f} {content / result.seconds / 1e6:>8.0f}"
                f" {result.output_bytes / content:>7.3f} {result.cpu_seconds / result.seconds:>11.2f}",
                flush=True,
            )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        if "output" in locals():
            shutil.rmtree(output.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
