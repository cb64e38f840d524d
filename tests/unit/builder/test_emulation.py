"""binfmt_misc handlers: reading them, deciding what runs here, registering from binfmt.d.

Every test works on a fake binfmt_misc directory (plain files), so nothing here needs root
or touches the kernel's handlers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.emulation import (
    emulation_problem,
    handler_for,
    parse_handler,
    registered_handlers,
    runs_natively,
    setup_binfmt,
)
from builder.errors import KilnError
from builder.graph import Platform

AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64")
AARCH64_MAGIC = "7f454c460201010000000000000000000200b700"
AARCH64_CONF = (
    r":qemu-aarch64:M::\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00"
    r":\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff"
    ":/usr/libexec/qemu-binfmt/aarch64-binfmt-P:OP\n"
)


def _handler_text(flags: str, *, enabled: bool = True) -> str:
    return (
        f"{'enabled' if enabled else 'disabled'}\n"
        "interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n"
        f"flags: {flags}\n"
        "offset 0\n"
        f"magic {AARCH64_MAGIC}\n"
        "mask ffffffffffffff00fffffffffffffffffeffffff\n"
    )


@pytest.fixture
def binfmt_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "binfmt_misc"
    directory.mkdir()
    (directory / "register").write_text("")
    (directory / "status").write_text("enabled\n")
    return directory


def test_parse_handler_reads_every_field() -> None:
    handler = parse_handler("qemu-aarch64", _handler_text("POF"))
    assert handler.enabled
    assert handler.interpreter == "/usr/libexec/qemu-binfmt/aarch64-binfmt-P"
    assert handler.flags == "POF"
    assert handler.elf_machine == 183
    assert handler.fixes_binary


def test_non_elf_handlers_match_no_machine(binfmt_dir: Path) -> None:
    (binfmt_dir / "python3.11").write_text(
        "enabled\ninterpreter /usr/bin/python3.11\nflags: \noffset 0\nmagic a70d0d0a\n"
    )
    handlers = registered_handlers(binfmt_dir)
    assert [(handler.name, handler.elf_machine) for handler in handlers] == [("python3.11", None)]


def test_native_platforms_need_no_handler() -> None:
    assert runs_natively(AMD64, AMD64)
    assert runs_natively(Platform("linux", "386"), AMD64)
    assert not runs_natively(ARM64, AMD64)
    assert not runs_natively(Platform("windows", "amd64"), AMD64)


def test_missing_handler_says_how_to_register(binfmt_dir: Path) -> None:
    problem = emulation_problem(ARM64, binfmt_dir)
    assert problem is not None
    assert "no binfmt_misc handler is registered for arm64 ELF files" in problem
    assert "kiln setup-binfmt" in problem
    assert "update-binfmts --enable qemu-aarch64" in problem


def test_disabled_handler_counts_as_missing(binfmt_dir: Path) -> None:
    (binfmt_dir / "qemu-aarch64").write_text(_handler_text("POF", enabled=False))
    assert handler_for(ARM64, binfmt_dir) is None


def test_handler_without_fix_binary_flag_is_a_problem(binfmt_dir: Path) -> None:
    (binfmt_dir / "qemu-aarch64").write_text(_handler_text("OC"))
    problem = emulation_problem(ARM64, binfmt_dir)
    assert problem is not None
    assert "lacks the F (fix-binary) flag" in problem


def test_handler_with_fix_binary_flag_serves(binfmt_dir: Path) -> None:
    (binfmt_dir / "qemu-aarch64").write_text(_handler_text("POCF"))
    assert emulation_problem(ARM64, binfmt_dir) is None


def test_setup_registers_the_conf_line_with_the_f_flag(binfmt_dir: Path, tmp_path: Path) -> None:
    conf_dir = tmp_path / "binfmt.d"
    conf_dir.mkdir()
    (conf_dir / "qemu-aarch64.conf").write_text(AARCH64_CONF)
    registered = setup_binfmt([ARM64, AMD64], binfmt_dir=binfmt_dir, conf_dirs=[conf_dir])
    assert registered == ["qemu-aarch64"]
    assert (binfmt_dir / "register").read_text() == AARCH64_CONF.rstrip("\n") + "F"


def test_setup_without_qemu_package_says_what_to_install(binfmt_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(KilnError, match="install Debian's qemu-user-static"):
        setup_binfmt([ARM64], binfmt_dir=binfmt_dir, conf_dirs=[tmp_path / "none"])
