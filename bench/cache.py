"""How fast a rebuild is once the layer cache is warm: kiln beside docker and buildah.

Run as root from the repository root: ``python bench/cache.py [--quick] [--keep DIR]``.
Two scenarios, each built once cold, then rebuilt fully cached, then (for the large
context) rebuilt after one file changed; rebuilds are timed three times (a different edit
each time) and the best kept:

* ``30-step``: a Dockerfile of 30 steps (RUN, COPY, ENV, WORKDIR) over a small context;
* ``large-context``: ``COPY . /ctx`` of 20,000 small files plus 300 MB of larger ones,
  then a RUN reading it; the one-file change edits one small file.

First, kiln's context digest of the large context is timed on its own (cold, warm, one file
changed), since it is most of what a cached ``COPY .`` costs.

kiln runs through its command line in a fresh process each time, so interpreter start-up
and imports count, as they do for a user. ``docker build`` and ``buildah bud`` are timed the
same way when installed and working (a reachable daemon for docker). The base image is a
busybox rootfs made from ``/bin/busybox`` and imported into each builder. When ``kiln
build`` is not available yet, or a tool is missing, that part is skipped with the reason.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BASE_IMAGE = "bench-busybox:latest"
BUSYBOX = Path("/bin/busybox")
STEP_COUNT = 30


@dataclass(frozen=True)
class Scale:
    """How big the large-context scenario is."""

    small_files: int
    large_files: int
    large_file_mb: int


FULL = Scale(small_files=20_000, large_files=30, large_file_mb=10)
QUICK = Scale(small_files=2_000, large_files=3, large_file_mb=10)


@dataclass(frozen=True)
class Builder:
    """One tool under test: how to import the base and how to build a context."""

    name: str
    import_base: Callable[[Path], None]
    build: Callable[[Path, str], None]


def kiln_command(root: Path, *args: str) -> list[str]:
    program = "from builder.cli.entry import run; run()"  # as the installed ``kiln`` script
    return [sys.executable, "-c", program, "--root", str(root), *args]


def run(command: Sequence[str], *, cwd: Path | None = None) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shown = " ".join(command[:4])
        raise RuntimeError(f"{shown} ... failed ({result.returncode}):\n{result.stderr[-2000:]}")


def available(command: Sequence[str], *, cwd: Path | None = None) -> bool:
    try:
        return subprocess.run(command, cwd=cwd, capture_output=True, check=False).returncode == 0
    except FileNotFoundError:
        return False


def make_base_tar(work: Path) -> Path:
    """A busybox rootfs tar: /bin/busybox, an ``sh`` link, the usual directories."""
    tar_path = work / "busybox-rootfs.tar"
    with tarfile.open(tar_path, "w") as archive:
        for directory in ("bin", "etc", "tmp", "root", "proc", "sys", "dev", "usr", "usr/bin"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if directory == "tmp" else 0o755
            archive.addfile(info)
        archive.add(BUSYBOX, "bin/busybox")
        for applet in ("sh", "ls", "wc", "cat", "echo", "mkdir", "touch"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            archive.addfile(link)
        for name, text in (("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"), ("etc/group", "root:x:0:\n")):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    return tar_path


def make_steps_context(directory: Path) -> None:
    """A small context and a 30-step Dockerfile mixing every kind of step."""
    directory.mkdir(parents=True)
    lines = [f"FROM {BASE_IMAGE}"]
    for index in range(STEP_COUNT):
        kind = index % 5
        if kind == 0:
            lines.append(f"RUN echo step {index} > /step{index}")
        elif kind == 1:
            (directory / f"file{index}.txt").write_text(f"file {index}\n")
            lines.append(f"COPY file{index}.txt /files/")
        elif kind == 2:
            lines.append(f"ENV STEP{index}=value{index}")
        elif kind == 3:
            lines.append(f"WORKDIR /work{index}")
        else:
            lines.append(f"LABEL step{index}=yes")
    (directory / "Dockerfile").write_text("\n".join(lines) + "\n")


def make_large_context(directory: Path, scale: Scale) -> Path:
    """Many small files and a few large ones; return the small file the change edits."""
    directory.mkdir(parents=True)
    per_directory = 200
    for index in range(scale.small_files):
        sub = directory / "src" / f"d{index // per_directory:03d}"
        if index % per_directory == 0:
            sub.mkdir(parents=True)
        (sub / f"f{index:05d}.txt").write_text(f"small file {index}\n")
    blobs = directory / "assets"
    blobs.mkdir()
    block = os.urandom(1 << 20)
    for index in range(scale.large_files):
        with (blobs / f"large{index:02d}.bin").open("wb") as out:
            for _ in range(scale.large_file_mb):
                out.write(block)
            out.write(index.to_bytes(4, "big"))
    (directory / "Dockerfile").write_text(
        f"FROM {BASE_IMAGE}\nCOPY . /ctx\nRUN ls -R /ctx | wc -l > /count\n"
    )
    return directory / "src" / "d000" / "f00000.txt"


def timed(action: Callable[[], None]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def kiln_builder(root: Path) -> Builder:
    def import_base(tar_path: Path) -> None:
        run(kiln_command(root, "import", "--change", 'CMD ["sh"]', str(tar_path), BASE_IMAGE))

    def build(context: Path, tag: str) -> None:
        run(kiln_command(root, "build", "--progress", "quiet", "-t", tag, str(context)))

    return Builder("kiln", import_base, build)


def docker_builder() -> Builder:
    def import_base(tar_path: Path) -> None:
        run(["docker", "import", "--change", 'CMD ["sh"]', str(tar_path), BASE_IMAGE])

    def build(context: Path, tag: str) -> None:
        run(["docker", "build", "-q", "-t", tag, str(context)])

    return Builder("docker (BuildKit)", import_base, build)


def buildah_builder() -> Builder:
    def import_base(tar_path: Path) -> None:
        container = subprocess.run(
            ["buildah", "from", "scratch"], capture_output=True, text=True, check=True
        ).stdout.strip()
        run(["buildah", "add", container, str(tar_path), "/"])
        run(["buildah", "config", "--cmd", "sh", container])
        run(["buildah", "commit", "-q", container, BASE_IMAGE])
        run(["buildah", "rm", container])

    def build(context: Path, tag: str) -> None:
        run(["buildah", "bud", "--layers", "-q", "-t", tag, str(context)])

    return Builder("buildah", import_base, build)


def builders(work: Path) -> list[Builder]:
    found: list[Builder] = []
    if available(kiln_command(work / "kiln-root", "build", "--help"), cwd=REPO_ROOT):
        found.append(kiln_builder(work / "kiln-root"))
    else:
        print("kiln: skipped, `kiln build` is not available yet")
    if shutil.which("docker") and available(["docker", "info"]):
        found.append(docker_builder())
    else:
        print("docker: skipped, not installed or no daemon")
    if shutil.which("buildah"):
        found.append(buildah_builder())
    else:
        print("buildah: skipped, not installed")
    return found


def bench(builder: Builder, work: Path, scale: Scale) -> list[tuple[str, float]]:
    """Cold build, fully cached rebuild, and one-file rebuild; seconds for each."""
    results: list[tuple[str, float]] = []
    steps = work / f"{builder.name.split()[0]}-steps"
    make_steps_context(steps)
    large = work / f"{builder.name.split()[0]}-large"
    edited = make_large_context(large, scale)
    builder.import_base(make_base_tar(work))
    os.sync()  # the 300 MB just written would be flushed while the first timings run
    results.append(("30-step: first build", timed(lambda: builder.build(steps, "bench-steps"))))
    results.append(("30-step: fully cached", best_of(lambda: builder.build(steps, "bench-steps"))))
    label = f"{scale.small_files} files + {scale.large_files * scale.large_file_mb} MB"
    results.append((f"{label}: first build", timed(lambda: builder.build(large, "bench-large"))))
    os.sync()  # as above: the first build's layer and snapshot, flushed before the rebuilds
    results.append((f"{label}: fully cached", best_of(lambda: builder.build(large, "bench-large"))))
    edits = iter(range(REPEATS))

    def edit_and_build() -> None:
        edited.write_text(f"changed {next(edits)}\n")
        builder.build(large, "bench-large")

    results.append((f"{label}: one file changed", best_of(edit_and_build)))
    return results


#: Rebuilds are timed this many times and the best kept (they leave nothing to undo).
REPEATS = 3


def best_of(action: Callable[[], None]) -> float:
    return min(timed(action) for _ in range(REPEATS))


#: Run in a fresh interpreter from the repository root: this file's own name would shadow
#: the ``cache`` package if it were imported here.
_HASH_PROGRAM = """
import sys, time
from pathlib import Path
from builder.context import BuildContext
from cache.contenthash import ContextHasher
context_dir, db = Path(sys.argv[1]), Path(sys.argv[2])
started = time.perf_counter()
with ContextHasher(db) as hasher:
    selection = hasher.digest_sources(BuildContext.open(context_dir), ["."])
print(time.perf_counter() - started, hasher.files_read, len(selection.files))
"""


def bench_context_hash(work: Path, scale: Scale) -> list[tuple[str, float]]:
    """kiln's context digest alone (what a cached ``COPY .`` costs): cold, warm, one file
    changed. Files are aged first, as the stat cache never trusts a file changed within the
    last two seconds."""
    context = work / "hash-context"
    edited = make_large_context(context, scale)
    aged = time.time() - 60
    for directory, _subdirs, files in os.walk(context):
        for name in files:
            os.utime(os.path.join(directory, name), (aged, aged))
    db = work / "hash-statcache.db"

    def digest() -> tuple[float, str]:
        command = [sys.executable, "-c", _HASH_PROGRAM, str(context), str(db)]
        output = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO_ROOT).stdout
        seconds, read, entries = output.split()
        return float(seconds), f"{entries} entries, {read} read"

    results = []
    for label in ("cold", "warm"):
        seconds, detail = digest()
        results.append((f"context digest, {label} ({detail})", seconds))
    edited.write_text("changed\n")
    os.utime(edited, (aged, aged))
    seconds, detail = digest()
    results.append((f"context digest, one file changed ({detail})", seconds))
    return results


#: The issue's figures for the peers on this class of machine (BuildKit with its daemon
#: warm), by scenario kind; printed beside kiln's when a peer is not installed here.
RECORDED_PEERS = {
    "docker (BuildKit)": {"30-step: fully cached": 0.13, "fully cached": 0.8, "one file changed": 1.0},
    "buildah": {"30-step: fully cached": 1.0, "fully cached": 5.9, "one file changed": 6.3},
}


def _kind(label: str) -> str | None:
    """The scenario kind of a result label (the large context's labels carry its size)."""
    if label.startswith("30-step: fully cached"):
        return "30-step: fully cached"
    for kind in ("one file changed", "fully cached"):
        if label.endswith(kind) and not label.startswith("30-step"):
            return kind
    return None


def print_ratios(results: dict[str, list[tuple[str, float]]], *, full_scale: bool) -> None:
    """kiln's time over each peer's (measured when it ran, else the issue's recorded figure
    at full scale): below 1 means kiln is faster."""
    kiln = dict(results.get("kiln", []))
    if not kiln:
        return
    print("\nkiln / peer (below 1: kiln faster)")
    for peer, recorded in RECORDED_PEERS.items():
        measured = dict(results.get(peer, []))
        for label, seconds in kiln.items():
            kind = _kind(label)
            if kind is None:
                continue
            if label in measured:
                other, source = measured[label], "measured"
            elif full_scale:
                other, source = recorded[kind], "recorded in the issue"
            else:
                continue
            print(f"  {label:<45} vs {peer:<18} {seconds / other:6.2f}  ({other:.2f} s, {source})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a tenth of the context size")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("skipped: builds run containers, which needs root")
        return 0
    if not BUSYBOX.is_file():
        print(f"skipped: {BUSYBOX} (busybox-static) is needed for the base image")
        return 0
    scale = QUICK if args.quick else FULL
    work = args.keep or Path(tempfile.mkdtemp(prefix="kiln-bench-cache-"))
    work.mkdir(parents=True, exist_ok=True)
    os.chdir(REPO_ROOT)
    try:
        print("kiln context hashing (in-process, without start-up)")
        for label, seconds in bench_context_hash(work, scale):
            print(f"  {label:<60} {seconds:8.3f} s")
        results: dict[str, list[tuple[str, float]]] = {}
        for builder in builders(work):
            print(f"\n{builder.name}")
            try:
                results[builder.name] = bench(builder, work, scale)
            except (RuntimeError, subprocess.CalledProcessError) as err:
                print(f"  failed: {err}")
                continue
            for label, seconds in results[builder.name]:
                print(f"  {label:<45} {seconds:8.3f} s")
        print_ratios(results, full_scale=scale is FULL)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
