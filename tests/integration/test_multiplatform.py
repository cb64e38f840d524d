"""Multi-platform builds end to end: a busybox base imported for amd64 and arm64 under one
name, two-platform builds into an OCI index, the archives of it, and an arm64 image run
under QEMU user emulation.

The arm64 busybox comes from Debian's ``busybox-static:arm64`` package, fetched once and
kept under /var/cache/kiln-tests/. A RUN for arm64 needs a binfmt_misc handler: under CI
the tests register one with ``kiln setup-binfmt``; elsewhere they skip with the reason when
none is registered. The cross-compilation test needs no emulation (its only RUN is on the
build platform).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from builder.emulation import emulation_problem, setup_binfmt
from builder.graph import Platform
from builder.layers.compression import open_decompressed
from builder.oci.mediatypes import OCI_LAYER_GZIP
from builder.store.store import MEDIA_TYPE_INDEX, Store
from tests.conftest import IN_CI, require_root
from tests.fixtures.busybox import busybox_tar  # noqa: F401  (a fixture)
from tests.fixtures.kiln_cli import kiln

if TYPE_CHECKING:
    from tests.fixtures.registry import RunningRegistry

pytest_plugins = ["tests.fixtures.registry"]
pytestmark = [pytest.mark.root, pytest.mark.slow]

CACHE_DIR = Path("/var/cache/kiln-tests/multiplatform")
AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64")
ELF_MACHINE = {"amd64": 62, "arm64": 183}

CROSS_DOCKERFILE = """\
FROM --platform=$BUILDPLATFORM busybox AS build
RUN cat /proc/sys/kernel/random/uuid > /stamp
FROM busybox
ARG TARGETARCH
COPY --from=build /stamp /stamp
"""

RUN_EACH_DOCKERFILE = """\
FROM busybox
ARG TARGETPLATFORM
RUN cp /bin/busybox /copied && echo "$TARGETPLATFORM $(uname -m)" > /built-for
"""


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


def _fetch_arm64_deb() -> Path:
    """Debian's busybox-static for arm64, downloaded once into the cache directory."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    cached = sorted(CACHE_DIR.glob("busybox-static_*_arm64.deb"))
    if cached:
        return cached[-1]
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        _unavailable("apt-get/dpkg are missing: cannot fetch busybox-static:arm64")
    foreign = subprocess.run(
        ["dpkg", "--print-foreign-architectures"], check=False, capture_output=True, text=True
    )
    steps = [] if "arm64" in foreign.stdout.split() else [["dpkg", "--add-architecture", "arm64"]]
    steps += [["apt-get", "update", "-qq"], ["apt-get", "download", "-qq", "busybox-static:arm64"]]
    for step in steps:
        done = subprocess.run(step, check=False, cwd=CACHE_DIR, capture_output=True, text=True)
        if done.returncode != 0:
            _unavailable(f"cannot fetch busybox-static:arm64 ({' '.join(step)}): {done.stderr.strip()}")
    cached = sorted(CACHE_DIR.glob("busybox-static_*_arm64.deb"))
    if not cached:
        _unavailable("apt-get download busybox-static:arm64 left no .deb")
    return cached[-1]


def _replace_member(source: Path, target: Path, member_name: str, content: bytes) -> None:
    """Copy a tar, with one regular file's content replaced (same mode and owner)."""
    with tarfile.open(source) as reading, tarfile.open(target, "w", format=tarfile.GNU_FORMAT) as writing:
        for member in reading:
            if member.name.lstrip("./") == member_name:
                member.size = len(content)
                writing.addfile(member, io.BytesIO(content))
            else:
                writing.addfile(member, reading.extractfile(member) if member.isfile() else None)


@pytest.fixture(scope="session")
def arm64_busybox_tar(tmp_path_factory: pytest.TempPathFactory, busybox_tar: Path) -> Path:  # noqa: F811
    """The busybox rootfs tar with /bin/busybox swapped for Debian's arm64 build."""
    require_root("fetching packages and building need root")
    deb = _fetch_arm64_deb()
    base = tmp_path_factory.mktemp("arm64-busybox")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(base / "deb")], check=True)
    binary = (base / "deb" / "bin" / "busybox").read_bytes()
    assert _elf_machine(binary) == ELF_MACHINE["arm64"]
    tar_path = base / "busybox-rootfs-arm64.tar"
    _replace_member(busybox_tar, tar_path, "bin/busybox", binary)
    return tar_path


@pytest.fixture
def two_platform_store(tmp_path: Path, busybox_tar: Path, arm64_busybox_tar: Path) -> Path:  # noqa: F811
    """A store whose ``busybox:latest`` is an index of an amd64 and an arm64 image."""
    store_root = tmp_path / "store"
    for platform, tar_path in ((AMD64, busybox_tar), (ARM64, arm64_busybox_tar)):
        status = kiln(store_root, "import", "--platform", str(platform), str(tar_path), "busybox:latest")
        assert status == 0
    return store_root


def _require_emulation() -> None:
    problem = emulation_problem(ARM64)
    if problem is not None and IN_CI:
        setup_binfmt([ARM64])
        problem = emulation_problem(ARM64)
    if problem is not None:
        _unavailable(problem)


def _elf_machine(binary: bytes) -> int:
    assert binary[:4] == b"\x7fELF"
    return int.from_bytes(binary[18:20], "little")


def _platform_manifests(store: Store, name: str) -> dict[str, str]:
    """platform text → manifest digest, from the index ``name`` points at."""
    entries = store.index_entries(store.resolve(name))
    assert entries is not None, f"{name} is not an index"
    found: dict[str, str] = {}
    for entry in entries:
        offered = entry["platform"]
        text = f"{offered['os']}/{offered['architecture']}"
        found[text + (f"/{offered['variant']}" if offered.get("variant") else "")] = entry["digest"]
    return found


def _file_in_layers(store: Store, manifest_digest: str, path: str) -> bytes | None:
    """The content of ``path`` in the topmost layer of the image that holds it."""
    manifest = store.manifest(manifest_digest)
    for layer in reversed(manifest["layers"]):
        with store.blobs.path(layer["digest"]).open("rb") as raw:
            stream, _compression = open_decompressed(raw)
            with tarfile.open(fileobj=stream, mode="r|") as archive:
                for member in archive:
                    if member.name.lstrip("./") == path and member.isfile():
                        extracted = archive.extractfile(member)
                        assert extracted is not None
                        return extracted.read()
    return None


def test_import_with_platform_grows_an_index(two_platform_store: Path) -> None:
    with Store.open(two_platform_store) as store:
        manifests = _platform_manifests(store, "busybox:latest")
        assert sorted(manifests) == ["linux/amd64", "linux/arm64"]
        for text, digest in manifests.items():
            binary = _file_in_layers(store, digest, "bin/busybox")
            assert binary is not None
            assert _elf_machine(binary) == ELF_MACHINE[text.split("/")[1]]
            config = store.get_image(digest)[1]
            assert config["architecture"] == text.split("/")[1]


def test_cross_compilation_builds_the_build_stage_once(two_platform_store: Path, tmp_path: Path) -> None:
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(CROSS_DOCKERFILE)
    oci_archive, docker_archive = tmp_path / "multi.oci.tar", tmp_path / "multi.docker.tar"
    status = kiln(
        two_platform_store,
        "build",
        "-q",
        "--platform",
        "linux/amd64,linux/arm64",
        "-t",
        "cross:latest",
        "-o",
        f"type=oci,dest={oci_archive}",
        "-o",
        f"type=docker,dest={docker_archive},name=cross:latest",
        str(context),
    )
    assert status == 0
    with Store.open(two_platform_store) as store:
        manifests = _platform_manifests(store, "cross:latest")
        assert sorted(manifests) == ["linux/amd64", "linux/arm64"]
        stamps = {text: _file_in_layers(store, digest, "stamp") for text, digest in manifests.items()}
        binaries = {text: _file_in_layers(store, digest, "bin/busybox") for text, digest in manifests.items()}
        top_layers = {
            text: store.manifest(digest)["layers"][-1]["digest"] for text, digest in manifests.items()
        }
        image_ids = {store.manifest(digest)["config"]["digest"] for digest in manifests.values()}
    # The uuid differs on every run of the build stage: one value means it ran once.
    assert stamps["linux/amd64"] is not None and len(stamps["linux/amd64"]) == 37
    assert stamps["linux/amd64"] == stamps["linux/arm64"]
    assert top_layers["linux/amd64"] == top_layers["linux/arm64"]
    assert {text: _elf_machine(binary or b"") for text, binary in binaries.items()} == {
        "linux/amd64": 62,
        "linux/arm64": 183,
    }
    _check_oci_archive(oci_archive, image_ids)
    with tarfile.open(docker_archive) as archive:
        member = archive.extractfile("manifest.json")
        assert member is not None
        entries = json.loads(member.read())
    assert len(entries) == 2
    assert sorted(entry["RepoTags"] for entry in entries) == [[], ["cross:latest"]]


def _check_oci_archive(archive_path: Path, image_ids: set[str]) -> None:
    """The archive's index.json names one index, which lists both platform manifests (of the
    images ``image_ids``, their built layers gzipped on the way out), and every blob they
    need is in the archive."""
    with tarfile.open(archive_path) as archive:
        names = set(archive.getnames())
        member = archive.extractfile("index.json")
        assert member is not None
        top = json.loads(member.read())
        assert [entry["mediaType"] for entry in top["manifests"]] == [MEDIA_TYPE_INDEX]
        index_file = archive.extractfile(f"blobs/sha256/{top['manifests'][0]['digest'][7:]}")
        assert index_file is not None
        index = json.loads(index_file.read())
        assert {entry["platform"]["architecture"] for entry in index["manifests"]} == {"amd64", "arm64"}
        configs: set[str] = set()
        for entry in index["manifests"]:
            manifest_file = archive.extractfile(f"blobs/sha256/{entry['digest'][7:]}")
            assert manifest_file is not None
            manifest = json.loads(manifest_file.read())
            configs.add(manifest["config"]["digest"])
            assert {layer["mediaType"] for layer in manifest["layers"]} == {OCI_LAYER_GZIP}
            for blob in [manifest["config"], *manifest["layers"]]:
                assert f"blobs/sha256/{blob['digest'][7:]}" in names
        assert configs == image_ids


def test_two_platform_build_with_a_run_in_each(
    two_platform_store: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    _require_emulation()
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(RUN_EACH_DOCKERFILE)
    status = kiln(
        two_platform_store,
        "build",
        "-q",
        "--platform",
        "linux/amd64,linux/arm64",
        "-t",
        "multi",
        str(context),
    )
    assert status == 0
    with Store.open(two_platform_store) as store:
        manifests = _platform_manifests(store, "multi:latest")
        for text, digest in manifests.items():
            copied = _file_in_layers(store, digest, "copied")
            assert copied is not None
            assert _elf_machine(copied) == ELF_MACHINE[text.split("/")[1]]
        built_for = {text: _file_in_layers(store, digest, "built-for") for text, digest in manifests.items()}
    assert built_for == {"linux/amd64": b"linux/amd64 x86_64\n", "linux/arm64": b"linux/arm64 aarch64\n"}
    capfd.readouterr()
    status = kiln(two_platform_store, "run", "--rm", "--platform", "linux/arm64", "multi", "uname", "-m")
    assert status == 0
    assert capfd.readouterr().out == "aarch64\n"
    status = kiln(two_platform_store, "inspect", "multi")
    assert status == 0
    inspected = json.loads(capfd.readouterr().out)
    assert inspected[0]["Platforms"] == ["linux/amd64", "linux/arm64"]
    assert [image["Architecture"] for image in inspected[0]["Manifests"]] == ["amd64", "arm64"]


def test_skip_reason_names_the_fix_when_no_handler(tmp_path: Path) -> None:
    """Without a handler the build's error says how to register one (a fake binfmt_misc)."""
    (tmp_path / "register").write_text("")
    problem = emulation_problem(ARM64, tmp_path)
    assert problem is not None
    assert "no binfmt_misc handler is registered for arm64" in problem
    assert "kiln setup-binfmt" in problem
    assert os.path.exists(tmp_path / "register")


@pytest.mark.usefixtures("registry_isolation")
def test_push_sends_the_index_and_pull_picks_a_platform(
    two_platform_store: Path, tmp_path: Path, registry: RunningRegistry
) -> None:
    from builder.registry.pull import pull_image

    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(CROSS_DOCKERFILE)
    ref = f"{registry.host}/kiln/cross:1"
    status = kiln(
        two_platform_store,
        "build",
        "-q",
        "--platform",
        "linux/amd64,linux/arm64",
        "-t",
        ref,
        "--push",
        str(context),
    )
    assert status == 0
    with Store.open(two_platform_store) as store:
        local = _platform_manifests(store, ref)
        built_arm64 = store.manifest(local["linux/arm64"])["config"]["digest"]
    with Store.open(tmp_path / "pulled") as fresh:
        pulled = pull_image(fresh, ref, platform=ARM64)
        # The same image (config), its built layers gzipped on the way out.
        assert fresh.manifest(pulled)["config"]["digest"] == built_arm64
        assert fresh.manifest(pulled)["layers"][-1]["mediaType"] == OCI_LAYER_GZIP
        assert fresh.get_image(pulled)[1]["architecture"] == "arm64"
        binary = _file_in_layers(fresh, pulled, "bin/busybox")
    assert binary is not None and _elf_machine(binary) == ELF_MACHINE["arm64"]
    # A two-platform build FROM the pushed index pulls each platform's base for its graph.
    (context / "Dockerfile").write_text(f"FROM {ref}\nCOPY Dockerfile /Dockerfile\n")
    fresh_root = tmp_path / "fresh"
    assert (
        kiln(fresh_root, "build", "-q", "--platform", "linux/arm64,linux/amd64", "-t", "again", str(context))
        == 0
    )
    with Store.open(fresh_root) as store:
        rebuilt = _platform_manifests(store, "again")
        machines = {
            text: _elf_machine(_file_in_layers(store, digest, "bin/busybox") or b"")
            for text, digest in rebuilt.items()
        }
    assert machines == {"linux/arm64": 183, "linux/amd64": 62}


def test_one_foreign_platform_builds_one_image(two_platform_store: Path, tmp_path: Path) -> None:
    _require_emulation()
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(RUN_EACH_DOCKERFILE)
    assert (
        kiln(two_platform_store, "build", "-q", "--platform", "linux/arm64", "-t", "one", str(context)) == 0
    )
    with Store.open(two_platform_store) as store:
        digest = store.resolve("one")
        assert store.index_entries(digest) is None
        assert store.get_image(digest)[1]["architecture"] == "arm64"
        assert _file_in_layers(store, digest, "built-for") == b"linux/arm64 aarch64\n"


def _tree(root: Path) -> dict[str, str]:
    """Every path under ``root`` (relative) → ``dir``, ``link`` or ``file``."""
    found: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        kind = "link" if path.is_symlink() else "dir" if path.is_dir() else "file"
        found[str(path.relative_to(root))] = kind
    return found


def test_local_and_tar_outputs_hold_one_directory_per_platform(
    two_platform_store: Path, tmp_path: Path
) -> None:
    """As BuildKit's exporters split platforms: ``linux_amd64/`` and ``linux_arm64/``, each
    that platform's whole filesystem; the tar holds the same tree as the directory."""
    _require_emulation()
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(RUN_EACH_DOCKERFILE)
    local_dir, rootfs_tar = tmp_path / "out", tmp_path / "rootfs.tar"
    status = kiln(
        two_platform_store,
        "build",
        "-q",
        "--platform",
        "linux/amd64,linux/arm64",
        "-o",
        f"type=local,dest={local_dir}",
        "-o",
        f"type=tar,dest={rootfs_tar}",
        str(context),
    )
    assert status == 0
    assert sorted(path.name for path in local_dir.iterdir()) == ["linux_amd64", "linux_arm64"]
    assert (local_dir / "linux_amd64" / "built-for").read_bytes() == b"linux/amd64 x86_64\n"
    assert (local_dir / "linux_arm64" / "built-for").read_bytes() == b"linux/arm64 aarch64\n"
    for name, machine in (("linux_amd64", 62), ("linux_arm64", 183)):
        assert _elf_machine((local_dir / name / "copied").read_bytes()) == machine
        assert _elf_machine((local_dir / name / "bin" / "busybox").read_bytes()) == machine
    amd64_tree, arm64_tree = _tree(local_dir / "linux_amd64"), _tree(local_dir / "linux_arm64")
    # The same busybox tree for both platforms, plus the two files the RUN wrote.
    assert amd64_tree == arm64_tree
    assert {"bin/busybox", "copied", "built-for"} <= {
        path for path, kind in amd64_tree.items() if kind == "file"
    }
    with tarfile.open(rootfs_tar) as archive:
        members = {member.name.removeprefix("./"): member for member in archive if member.name != "."}
        in_tar = {
            name: "link" if member.issym() else "dir" if member.isdir() else "file"
            for name, member in members.items()
        }
        assert in_tar == {
            f"{platform}/{path}" if path != "." else platform: kind
            for platform, tree in (
                ("linux_amd64", {".": "dir", **amd64_tree}),
                ("linux_arm64", {".": "dir", **arm64_tree}),
            )
            for path, kind in tree.items()
        }
        built_for = {
            name: archive.extractfile(members[f"{name}/built-for"]) for name in ("linux_amd64", "linux_arm64")
        }
        assert {name: member.read() if member else None for name, member in built_for.items()} == {
            "linux_amd64": b"linux/amd64 x86_64\n",
            "linux_arm64": b"linux/arm64 aarch64\n",
        }


@pytest.mark.parametrize(
    ("platform", "directory"),
    [
        (Platform("linux", "amd64"), "linux_amd64"),
        (Platform("linux", "arm64"), "linux_arm64"),
        (Platform("linux", "arm64", "v8"), "linux_arm64"),
        (Platform("linux", "arm"), "linux_arm_v7"),
        (Platform("linux", "arm", "v6"), "linux_arm_v6"),
        (Platform("linux", "amd64", "v3"), "linux_amd64_v3"),
    ],
)
def test_platform_directory_names_as_buildkit(platform: Platform, directory: str) -> None:
    from builder.cli.platform_builds import platform_directory

    assert platform_directory(platform) == directory


def test_two_spellings_of_one_platform_are_refused_before_a_split_export(tmp_path: Path) -> None:
    from builder.cli.main import main

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    argv = ["--root", str(tmp_path / "store"), "build", "--platform", "linux/amd64,linux/amd64/v1"]
    argv += ["-o", f"type=local,dest={tmp_path / 'out'}", str(tmp_path)]
    assert main(argv) == 2
    assert not (tmp_path / "out").exists()
