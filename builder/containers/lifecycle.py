"""Creating, running and removing containers.

A container is its image's snapshots (overlay lower dirs, shared with every other user of
the image) plus a writable layer of its own, ``<store>/containers/<id>/upper``, which
outlives each run: a second run or a ``kiln commit`` sees what the first one wrote. Each
run mounts the overlay afresh through :func:`builder.exec.step.run_step`, whose scratch
dir (overlay work dir and mount point) sits beside ``upper`` and goes when the run ends.

The image stays safe from ``prune`` and from a plain ``rmi`` while the container exists: a
lease without expiry holds its manifest (and so its blobs and snapshots), and ``rmi``
asks :func:`image_in_use` first.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

from builder.containers.names import random_name
from builder.containers.process import RunOverrides, resolve_process
from builder.containers.records import (
    ContainerRecord,
    all_records,
    delete_record,
    records_using,
    save_record,
)
from builder.errors import StoreError, UsageError
from builder.exec.overlay import is_mounted
from builder.exec.runtime import OciRuntime
from builder.exec.step import run_step
from builder.graph import Platform
from builder.imagestate import utc_timestamp
from builder.oci.reference import parse_reference
from builder.store.meta import LEASE_IMAGE
from builder.store.snapshots import chain_ids
from builder.store.store import JsonObject, Store

#: The exit status docker gives when the container could not be started at all.
SETUP_FAILED_STATUS = 125


def container_dir(store: Store, container_id: str) -> Path:
    """Where a container's writable layer lives."""
    return store.root / "containers" / container_id


def upper_dir(store: Store, container_id: str) -> Path:
    return container_dir(store, container_id) / "upper"


def _check_name(store: Store, name: str) -> None:
    for record in all_records(store.meta):
        if record.name == name:
            raise UsageError(
                f'the container name "{name}" is already in use by container {record.id}: '
                "remove that container or choose another name"
            )


def create_container(
    store: Store, image: str, overrides: RunOverrides, *, name: str = "", platform: Platform | None = None
) -> ContainerRecord:
    """Make a container of ``image`` (its process resolved now) with an empty writable layer.

    A multi-platform image gives its manifest for ``platform`` (default: this machine's).
    """
    digest = store.resolve_for(image, platform)
    _manifest, config = store.get_image(digest)
    process = resolve_process(config.get("config") or {}, overrides)
    taken = {record.name for record in all_records(store.meta)}
    if name:
        _check_name(store, name)
    else:
        name = random_name(taken)
    container_id = secrets.token_hex(32)
    lease_id = store.meta.create_lease(expires=None)
    store.meta.add_lease_resource(lease_id, LEASE_IMAGE, digest)
    record = ContainerRecord(
        id=container_id,
        name=name,
        image=image,
        image_digest=digest,
        entrypoint=process.entrypoint,
        cmd=process.cmd,
        env=process.env,
        working_dir=process.working_dir,
        user=process.user,
        created=utc_timestamp(),
        lease_id=lease_id,
    )
    upper_dir(store, container_id).mkdir(parents=True)
    save_record(store.meta, record)
    return record


def start_container(
    store: Store,
    record: ContainerRecord,
    *,
    on_output: Callable[[bytes], None],
    runtime: OciRuntime | None = None,
) -> ContainerRecord:
    """Run the container's process to its end; the record as it ended (status, exit code).

    A run that cannot start (no runtime, unknown user) is recorded as exited with status
    125 and its error re-raised; an interrupt leaves the record exited with 130.
    """
    if record.is_running():
        raise UsageError(f"container {record.name} is already running")
    lower_dirs = image_snapshot_dirs(store, record.image_digest)
    running = record.with_status("running", pid=os.getpid(), exit_code=None, finished="")
    save_record(store.meta, running)
    exit_code = SETUP_FAILED_STATUS
    try:
        result = run_step(
            lower_dirs,
            upper_dir(store, record.id),
            argv=record.argv,
            env=record.env,
            cwd=record.working_dir,
            user=record.user,
            network="host",
            on_output=on_output,
            runtime=runtime,
            hostname=record.short_id,
        )
        exit_code = result.exit_code
    except KeyboardInterrupt:
        exit_code = 130
        raise
    finally:
        ended = running.with_status("exited", exit_code=exit_code, pid=0, finished=utc_timestamp())
        save_record(store.meta, ended)
    return ended


def remove_container(store: Store, record: ContainerRecord, *, force: bool = False) -> None:
    """Delete the container's writable layer, its lease and its record.

    A running container is refused unless ``force``; kiln runs containers in the foreground,
    so a forced removal of a live one only forgets it (its kiln process cleans up its own
    mounts when it ends). A directory still mounted is never deleted through.
    """
    if record.is_running() and not force:
        raise StoreError(f"cannot remove container {record.name}: it is running (stop it or use --force)")
    directory = container_dir(store, record.id)
    if directory.exists():
        mounted = [path for path in directory.iterdir() if is_mounted(path / "rootfs")]
        if mounted and not force:
            raise StoreError(f"cannot remove container {record.name}: {mounted[0]} is still mounted")
        if not mounted:
            shutil.rmtree(directory)
    store.meta.delete_lease(record.lease_id)
    delete_record(store.meta, record.id)


def image_in_use(store: Store, manifest_digest: str) -> list[ContainerRecord]:
    """The containers that use the image ``manifest_digest`` (``rmi`` refuses while any do)."""
    return records_using(store.meta, manifest_digest)


def check_image_removable(store: Store, ref: str) -> None:
    """Raise :class:`StoreError` when ``kiln rmi ref`` would delete an image a container
    uses, naming the container, in docker's words. Removing one of several names is fine."""
    digest = store.resolve(ref)
    users = image_in_use(store, digest)
    if not users:
        return
    user = users[0]
    image_id = str(store.manifest(digest)["config"]["digest"]).removeprefix("sha256:")[:12]
    try:
        named = store.meta.ref(str(parse_reference(ref))) is not None
    except UsageError:
        named = False
    if named:
        if len(store.meta.refs_to(digest)) > 1:
            return
        raise StoreError(
            f'conflict: unable to remove repository reference "{ref}" (must force) - '
            f"container {user.short_id} ({user.name}) is using its referenced image {image_id}"
        )
    state = "running" if user.is_running() else "stopped"
    raise StoreError(
        f"conflict: unable to delete {ref} (must be forced) - "
        f"image is being used by {state} container {user.short_id} ({user.name})"
    )


def image_documents(store: Store, manifest_digest: str) -> tuple[JsonObject, JsonObject]:
    """A container's image manifest and config, read by digest: the blobs stay (the
    container's lease keeps them) even after ``rmi --force`` forgot the image's record."""
    manifest = store.manifest(manifest_digest)
    config = store.manifest(str(manifest["config"]["digest"]))
    return manifest, config


def image_snapshot_dirs(store: Store, manifest_digest: str) -> list[Path]:
    """The image's snapshot dirs, bottom first, unpacking any not yet unpacked."""
    manifest, config = image_documents(store, manifest_digest)
    layers = store.layers(manifest, config)
    parent = ""
    directories: list[Path] = []
    for layer, chain_id in zip(layers, chain_ids([layer.diff_id for layer in layers]), strict=True):
        directories.append(store.snapshots.ensure(chain_id, parent, layer.diff_id, layer.digest))
        parent = chain_id
    return directories
