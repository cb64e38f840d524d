"""Running binaries of a foreign architecture: the kernel's binfmt_misc and QEMU user mode.

A ``RUN`` for ``linux/arm64`` on an x86-64 machine execs an aarch64 ELF file. The kernel
runs it only when a binfmt_misc handler matches that ELF header and names an interpreter
(``qemu-aarch64``). Inside a container the interpreter's path does not exist, so the handler
must carry the F (fix-binary) flag: the kernel opens the interpreter when the handler is
registered, not when the binary runs. Without such a handler the runtime fails with a bare
"exec format error"; checking first turns that into an error that says what to do.

Handlers are registered from the ``binfmt.d`` files of Debian's ``qemu-user-static`` (the
same lines ``systemd-binfmt`` writes), by ``kiln setup-binfmt``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from builder.errors import BuildError, KilnError
from builder.graph import BuildGraph, Exec, Platform
from builder.lazyclasses import dataclass
from builder.registry.platforms import host_platform

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
BINFMT_CONF_DIRS = (Path("/usr/lib/binfmt.d"), Path("/etc/binfmt.d"))

#: ELF ``e_machine`` of each OCI architecture, as a handler's magic bytes name it.
ELF_MACHINE = {
    "386": 3,
    "amd64": 62,
    "arm": 40,
    "arm64": 183,
    "ppc64le": 21,
    "s390x": 22,
    "riscv64": 243,
    "mips64le": 8,
}

#: QEMU's name for each OCI architecture (``qemu-aarch64``).
QEMU_NAME = {
    "386": "i386",
    "amd64": "x86_64",
    "arm": "arm",
    "arm64": "aarch64",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "mips64le": "mips64el",
}

#: Architectures a host runs without emulation (an x86-64 kernel runs i386 binaries).
_NATIVE_TOO = {"amd64": {"386"}, "arm64": {"arm"}}

HOW_TO_REGISTER = (
    "register QEMU user emulation with `kiln setup-binfmt` (as root, with Debian's "
    "qemu-user-static installed: apt-get install qemu-user-static), or with "
    "`update-binfmts --enable qemu-{qemu}`"
)


@dataclass(frozen=True)
class BinfmtHandler:
    """One registered binfmt_misc entry, as ``/proc/sys/fs/binfmt_misc/NAME`` shows it."""

    name: str
    enabled: bool
    interpreter: str
    flags: str
    magic: bytes

    @property
    def elf_machine(self) -> int | None:
        """The ``e_machine`` the magic matches, when it matches an ELF header."""
        if len(self.magic) < 20 or not self.magic.startswith(b"\x7fELF"):
            return None
        if self.magic[5] == 2:  # EI_DATA: big-endian (s390x)
            return int.from_bytes(self.magic[18:20], "big")
        return int.from_bytes(self.magic[18:20], "little")

    @property
    def fixes_binary(self) -> bool:
        """Whether the kernel opened the interpreter at registration (the F flag)."""
        return "F" in self.flags


def parse_handler(name: str, text: str) -> BinfmtHandler:
    """A handler from the text of its binfmt_misc file."""
    enabled = False
    interpreter = flags = ""
    magic = b""
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if line.strip() == "enabled":
            enabled = True
        elif key == "interpreter":
            interpreter = value.strip()
        elif key == "flags:":
            flags = value.strip()
        elif key == "magic":
            try:
                magic = bytes.fromhex(value.strip())
            except ValueError:
                magic = b""
    return BinfmtHandler(name, enabled, interpreter, flags, magic)


def registered_handlers(binfmt_dir: Path = BINFMT_DIR) -> list[BinfmtHandler]:
    """Every handler the kernel has, or none when binfmt_misc is not mounted."""
    handlers: list[BinfmtHandler] = []
    if not (binfmt_dir / "register").exists():
        return handlers
    for entry in sorted(binfmt_dir.iterdir()):
        if entry.name in ("register", "status"):
            continue
        try:
            handlers.append(parse_handler(entry.name, entry.read_text(encoding="utf-8")))
        except OSError:
            continue
    return handlers


def runs_natively(platform: Platform, host: Platform | None = None) -> bool:
    """Whether this machine's kernel runs the platform's binaries without a handler."""
    machine = host or host_platform()
    if platform.os != machine.os:
        return False
    return platform.architecture == machine.architecture or platform.architecture in _NATIVE_TOO.get(
        machine.architecture, set()
    )


def handler_for(platform: Platform, binfmt_dir: Path = BINFMT_DIR) -> BinfmtHandler | None:
    """The enabled handler for the platform's ELF binaries (one with the F flag first)."""
    wanted = ELF_MACHINE.get(platform.architecture)
    found = [
        handler
        for handler in registered_handlers(binfmt_dir)
        if handler.enabled and wanted is not None and handler.elf_machine == wanted
    ]
    found.sort(key=lambda handler: not handler.fixes_binary)
    return found[0] if found else None


def emulation_problem(platform: Platform, binfmt_dir: Path = BINFMT_DIR) -> str | None:
    """Why a container for ``platform`` cannot run here, or None when it can."""
    if runs_natively(platform):
        return None
    qemu = QEMU_NAME.get(platform.architecture, platform.architecture)
    how = HOW_TO_REGISTER.format(qemu=qemu)
    if platform.os != "linux":
        return f"cannot run {platform} binaries: only linux containers run here"
    handler = handler_for(platform, binfmt_dir)
    if handler is None:
        return (
            f"cannot run {platform} binaries on this {host_platform()} machine: no binfmt_misc "
            f"handler is registered for {platform.architecture} ELF files; {how}"
        )
    if not handler.fixes_binary:
        return (
            f"the binfmt_misc handler {handler.name!r} for {platform.architecture} lacks the F "
            f"(fix-binary) flag, so its interpreter {handler.interpreter} cannot be found inside "
            f"a container; re-register it: {how}"
        )
    return None


def require_emulation(platform: Platform, what: str = "RUN") -> None:
    """Raise a :class:`BuildError` saying how to register a handler when none serves ``platform``."""
    problem = emulation_problem(platform)
    if problem is not None:
        raise BuildError(f"{what} for {platform}: {problem}")


def check_graph_runnable(graph: BuildGraph) -> None:
    """Fail before any work when a stage with a ``RUN`` targets a platform nothing runs here."""
    for stage in graph.stages:
        if any(isinstance(op, Exec) for op in stage.ops):
            require_emulation(stage.platform, f"RUN in stage {stage.name or stage.index}")


# ---------------------------------------------------------------------------------------
# Registering handlers


def qemu_conf_files(conf_dirs: Iterable[Path] = BINFMT_CONF_DIRS) -> dict[str, Path]:
    """The ``qemu-*.conf`` files of ``binfmt.d``, by QEMU name (``aarch64``)."""
    found: dict[str, Path] = {}
    for directory in conf_dirs:
        for path in sorted(directory.glob("qemu-*.conf")) if directory.is_dir() else []:
            found[path.name.removeprefix("qemu-").removesuffix(".conf")] = path
    return found


def _ensure_mounted(binfmt_dir: Path) -> None:
    if (binfmt_dir / "register").exists():
        return
    import subprocess  # here: every build checks its graph, only setup-binfmt mounts

    completed = subprocess.run(
        ["mount", "-t", "binfmt_misc", "binfmt_misc", str(binfmt_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise KilnError(f"cannot mount binfmt_misc at {binfmt_dir}: {completed.stderr.strip()}")


def _with_fix_binary(line: str) -> str:
    """The register line with the F flag added (the last field holds the flags)."""
    head, _, flags = line.rpartition(":")
    return line if "F" in flags else f"{head}:{flags}F"


def setup_binfmt(
    platforms: Iterable[Platform],
    *,
    binfmt_dir: Path = BINFMT_DIR,
    conf_dirs: Iterable[Path] = BINFMT_CONF_DIRS,
) -> list[str]:
    """Register a fix-binary QEMU handler for every platform that needs one; return what
    was registered (``qemu-aarch64``), leaving working handlers alone."""
    confs = qemu_conf_files(conf_dirs)
    registered: list[str] = []
    wanted = [platform for platform in platforms if not runs_natively(platform)]
    if wanted:
        _ensure_mounted(binfmt_dir)
    for platform in wanted:
        qemu = QEMU_NAME.get(platform.architecture)
        if qemu is None:
            raise KilnError(f"no QEMU emulator is known for {platform}")
        if emulation_problem(platform, binfmt_dir) is None:
            continue
        conf = confs.get(qemu)
        if conf is None:
            raise KilnError(
                f"no binfmt.d file for qemu-{qemu}: install Debian's qemu-user-static "
                "(apt-get install qemu-user-static)"
            )
        line = next(
            (text for text in conf.read_text(encoding="utf-8").splitlines() if text.startswith(":")), ""
        )
        name = line.split(":")[1] if line.count(":") > 2 else ""
        if not name:
            raise KilnError(f"{conf} holds no binfmt_misc registration line")
        existing = binfmt_dir / name
        if existing.exists():
            existing.write_text("-1", encoding="utf-8")  # remove the one without F
        try:
            (binfmt_dir / "register").write_text(_with_fix_binary(line), encoding="utf-8")
        except OSError as err:
            raise KilnError(f"cannot register {name} with binfmt_misc: {err}") from err
        registered.append(name)
    return registered
