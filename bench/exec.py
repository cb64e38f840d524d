"""What a RUN step costs beyond its command: ``run_step`` of ``/bin/true``, crun against runc.

Run as root from the repository root: ``python bench/exec.py [runs per runtime]``. The
rootfs is a busybox image made from /bin/busybox with what real images have (/proc, /dev,
/sys, /etc/hosts), so no mount-point stubs are made. For each installed runtime it prints
the wall time of the whole step (mount, user lookup, spec, container, stub check, unmount,
clean-up) and, beside it, of the bare runtime call over the same prepared bundle: the
difference is kiln's own share. The build goal is under 30 ms per step.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from builder.exec.runtime import OciRuntime, find_runtime
from builder.exec.spec import runtime_spec
from builder.exec.step import run_step
from builder.exec.users import ResolvedUser

BUSYBOX = Path("/bin/busybox")


def make_rootfs(root: Path) -> Path:
    for directory in ("bin", "etc", "proc", "dev", "sys", "tmp"):
        (root / directory).mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in ("sh", "true"):
        (root / "bin" / applet).symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    (root / "etc" / "hosts").write_text("")
    (root / "etc" / "resolv.conf").write_text("")
    return root


def timed(runs: int, action: Callable[[int], None]) -> list[float]:
    milliseconds = []
    for index in range(runs):
        started = time.perf_counter()
        action(index)
        milliseconds.append((time.perf_counter() - started) * 1000)
    return sorted(milliseconds)


def describe(label: str, milliseconds: list[float]) -> str:
    p90 = milliseconds[int(len(milliseconds) * 0.9)]
    median = statistics.median(milliseconds)
    return f"{label:<28} median {median:6.1f} ms   p90 {p90:6.1f} ms   min {milliseconds[0]:6.1f} ms"


def bench_runtime(runtime: OciRuntime, rootfs: Path, scratch: Path, runs: int) -> None:
    def whole_step(index: int) -> None:
        upper = scratch / f"upper-{runtime.name}-{index}"
        result = run_step(
            [rootfs],
            upper,
            argv=["/bin/true"],
            env=["PATH=/bin"],
            cwd="/",
            user="",
            network="default",
            on_output=lambda chunk: None,
            runtime=runtime,
        )
        assert result.exit_code == 0, result.output_tail
        shutil.rmtree(upper)

    bundle = scratch / f"bundle-{runtime.name}"
    bundle.mkdir()
    spec = runtime_spec(
        rootfs=rootfs,
        argv=["/bin/true"],
        env=["PATH=/bin"],
        cwd="/",
        user=ResolvedUser(uid=0, gid=0),
        network="host",
        hosts_file=rootfs / "etc" / "hosts",
        resolv_conf=rootfs / "etc" / "resolv.conf",
    )
    (bundle / "config.json").write_text(json.dumps(spec))

    def bare_runtime(index: int) -> None:
        runtime.popen(
            "run",
            "--bundle",
            str(bundle),
            f"kiln-bench-{index}",
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ).wait()

    timed(3, whole_step)  # warm the page cache and the runtime binary
    print(describe(f"{runtime.name}: run_step", timed(runs, whole_step)))
    print(describe(f"{runtime.name}: bare '{runtime.name} run'", timed(runs, bare_runtime)))


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    with tempfile.TemporaryDirectory(prefix="kiln-bench-exec-") as scratch_text:
        scratch = Path(scratch_text)
        rootfs = make_rootfs(scratch / "rootfs")
        for name in ("crun", "runc"):
            if shutil.which(name) is not None:
                bench_runtime(find_runtime(name), rootfs, scratch, runs)


if __name__ == "__main__":
    main()
