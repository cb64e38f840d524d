"""``-o/--output`` of ``kiln build``: where the built image goes besides the store.

``type=registry,name=REF`` pushes it; ``type=oci|docker,dest=FILE`` write an archive (as
``kiln save`` does), ``type=local,dest=DIR`` the flattened filesystem, ``type=tar,dest=FILE``
that filesystem as one tar. Files are written beside their destination and renamed, so a
failed export leaves no half file. A multi-platform build writes ``local`` and ``tar`` as
BuildKit does: one subdirectory per platform (``linux_amd64``), each with its filesystem.

``compression=gzip|zstd|none`` (else the build's ``--compression``) is how the layers the
store keeps uncompressed leave in an OCI archive or a push; a docker archive holds plain
tars, as ``docker save`` writes them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from builder.errors import UsageError
from builder.lazyclasses import dataclass

if TYPE_CHECKING:
    from builder.layers.compression import Compression
    from builder.store.store import Store

OUTPUT_TYPES = ("oci", "docker", "local", "tar", "registry")
#: The values of ``compression=`` (``builder.layers.compression`` loads its compressors).
_COMPRESSIONS: tuple[Compression, ...] = ("gzip", "zstd", "none")


@dataclass(frozen=True)
class OutputSpec:
    """One parsed ``--output``."""

    type: str
    dest: Path
    name: str = ""
    #: ``compression=``; None leaves it to the build's ``--compression``.
    compression: Compression | None = None


def parse_output(text: str) -> OutputSpec:
    """``type=oci,dest=out.tar[,name=N]``; a bare path means ``type=local,dest=PATH``."""
    if "=" not in text:
        return OutputSpec("local", Path(text))
    fields: dict[str, str] = {}
    for item in text.split(","):
        key, has_value, value = item.partition("=")
        if not has_value:
            raise UsageError(f"--output {text!r}: {item!r} is not KEY=VALUE")
        fields[key.strip()] = value.strip()
    kind = fields.get("type", "local")
    if kind not in OUTPUT_TYPES:
        raise UsageError(f"--output {text!r}: unknown type {kind!r} (one of {', '.join(OUTPUT_TYPES)})")
    compression = parse_compression(fields.get("compression"), f"--output {text!r}")
    if kind == "registry":
        if not fields.get("name"):
            raise UsageError(f"--output {text!r}: type=registry needs name=REGISTRY/REPOSITORY[:TAG]")
        return OutputSpec(kind, Path(), fields["name"], compression)
    if not fields.get("dest"):
        raise UsageError(f"--output {text!r}: dest= is required")
    return OutputSpec(kind, Path(fields["dest"]), fields.get("name", ""), compression)


def parse_compression(value: str | None, where: str) -> Compression | None:
    """A ``compression=`` field of an output or cache option (``where`` names the option
    in the error), ``None`` when it is absent."""
    if value is None:
        return None
    if value == "uncompressed":  # BuildKit's spelling
        return "none"
    for known in _COMPRESSIONS:
        if value == known:
            return known
    raise UsageError(f"{where}: compression must be gzip, zstd or none, not {value!r}")


def write_output(
    store: Store,
    manifest_digest: str,
    output: OutputSpec,
    *,
    insecure: Sequence[str] = (),
    compression: Compression = "gzip",
) -> str | None:
    """Write the image ``manifest_digest`` as ``output`` asks (``type=registry`` pushes it
    to ``name``, with plain http allowed for the ``insecure`` registries); layers leave
    compressed as the output's own ``compression=`` says, else as ``compression``.

    Returns the digest the registry holds for a push (it differs from ``manifest_digest``
    when layers were compressed on the way), ``None`` for the other outputs."""
    leaving = output.compression or compression
    if output.type == "registry":
        from builder.registry import push_image

        return push_image(store, output.name, source=manifest_digest, insecure=insecure, compression=leaving)
    # The exporters load only when an output is written: most builds (and every cached
    # rebuild without -o) never need them, and they cost ~20 ms of imports at start-up.
    from builder.export.directory import export_directory

    if output.type == "local":
        export_directory(store, manifest_digest, output.dest)
        return None
    with _written_beside(output.dest) as temp_path:
        if output.type == "tar":
            _write_tree_tar(lambda root: export_directory(store, manifest_digest, root), temp_path)
        else:
            names = [output.name] if output.name else []
            if names:
                store.tag(manifest_digest, output.name)
            from builder.export.docker_archive import write_docker_archive
            from builder.export.oci_archive import write_oci_archive

            with temp_path.open("wb") as out:
                if output.type == "oci":
                    write_oci_archive(store, names or [manifest_digest], out, compression=leaving)
                else:
                    write_docker_archive(store, names or [manifest_digest], out)
    return None


def write_platform_split_output(store: Store, images: Sequence[tuple[str, str]], output: OutputSpec) -> None:
    """``type=local`` or ``type=tar`` of several platforms: each ``(subdirectory, manifest
    digest)`` of ``images`` becomes that subdirectory of the destination holding the image's
    filesystem (the tar holds the same tree), as BuildKit's exporters split platforms."""
    from builder.export.directory import export_platform_directories

    if output.type == "local":
        export_platform_directories(store, images, output.dest)
        return
    if output.type != "tar":
        raise ValueError(f"type={output.type} is not split by platform")
    with _written_beside(output.dest) as temp_path:
        _write_tree_tar(lambda root: export_platform_directories(store, images, root), temp_path)


@contextmanager
def _written_beside(dest: Path) -> Iterator[Path]:
    """A temporary path beside ``dest``, renamed to ``dest`` once the block has written it
    and removed if the block fails."""
    import secrets

    temp_path = dest.with_name(f".{dest.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        yield temp_path
        os.replace(temp_path, dest)
    finally:
        temp_path.unlink(missing_ok=True)


def _write_tree_tar(fill: Callable[[Path], None], target: Path) -> None:
    """Write into ``target`` one tar of the tree ``fill`` creates in an empty scratch directory."""
    import shutil
    import subprocess
    import tempfile

    scratch = Path(tempfile.mkdtemp(prefix="kiln-export-"))
    try:
        fill(scratch / "rootfs")
        subprocess.run(
            ["tar", "--numeric-owner", "--xattrs", "-C", str(scratch / "rootfs"), "-cf", str(target), "."],
            check=True,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
