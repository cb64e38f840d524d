"""Container records: what ``kiln ps`` lists, kept in the store's key/value table.

A record is one JSON value under the namespace ``containers``, keyed by the container's full
id. It holds what the container runs (resolved once, when it is created, so a later change
of the image's name does not change the container) and how its last run ended. The pid of
the kiln process running it lets a reader tell a live run from one whose kiln died.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Literal

from builder.errors import StoreError
from builder.lazyclasses import dataclass
from builder.processes import process_alive
from builder.store.meta import MetaStore

NAMESPACE = "containers"
SHORT_ID_LENGTH = 12

Status = Literal["created", "running", "exited"]


@dataclass(frozen=True)
class ContainerRecord:
    """One container: its identity, its image, what it runs and how its last run ended.

    ``image`` is the reference the user gave; ``image_digest`` the manifest it resolved to,
    which is what the container's layers come from. ``entrypoint`` and ``cmd`` are kept
    apart because ``kiln commit`` writes the container's Cmd into the new image, as docker
    does. ``lease_id`` names the store lease that keeps the image from ``prune``.
    """

    id: str
    name: str
    image: str
    image_digest: str
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    env: tuple[str, ...]
    working_dir: str
    user: str
    created: str
    lease_id: str
    status: Status = "created"
    exit_code: int | None = None
    pid: int = 0
    finished: str = ""

    @property
    def short_id(self) -> str:
        return self.id[:SHORT_ID_LENGTH]

    @property
    def argv(self) -> tuple[str, ...]:
        return (*self.entrypoint, *self.cmd)

    def is_running(self) -> bool:
        """Running, and the kiln process running it still alive (a crashed run is not)."""
        return self.status == "running" and process_alive(self.pid)

    def with_status(self, status: Status, **fields: object) -> ContainerRecord:
        return replace(self, status=status, **fields)  # type: ignore[arg-type]


def save_record(meta: MetaStore, record: ContainerRecord) -> None:
    meta.put_value(NAMESPACE, record.id, asdict(record))


def delete_record(meta: MetaStore, container_id: str) -> None:
    meta.delete_value(NAMESPACE, container_id)


def _from_value(value: object) -> ContainerRecord:
    if not isinstance(value, dict):
        raise StoreError(f"a container record is not a JSON object: {value!r}")
    fields = dict(value)
    for key in ("entrypoint", "cmd", "env"):
        fields[key] = tuple(fields.get(key) or ())
    try:
        return ContainerRecord(**fields)
    except TypeError as err:
        raise StoreError(f"a container record does not fit this kiln: {err}") from err


def all_records(meta: MetaStore) -> list[ContainerRecord]:
    """Every container, newest first (as ``docker ps`` lists them)."""
    records = []
    for key in meta.keys(NAMESPACE):
        value = meta.get_value(NAMESPACE, key)
        if value is not None:
            records.append(_from_value(value))
    return sorted(records, key=lambda record: record.created, reverse=True)


def find_record(meta: MetaStore, wanted: str) -> ContainerRecord:
    """The container named ``wanted``: a full id, a name, or a unique id prefix."""
    records = all_records(meta)
    for record in records:
        if wanted in (record.id, record.name):
            return record
    matches = [record for record in records if wanted and record.id.startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise StoreError(f"multiple containers match {wanted!r}: use more of the id")
    raise StoreError(f"no such container: {wanted}")


def records_using(meta: MetaStore, manifest_digest: str) -> list[ContainerRecord]:
    """The containers made from the image ``manifest_digest``."""
    return [record for record in all_records(meta) if record.image_digest == manifest_digest]
