"""The image config: what a container runs with, the layer diff ids, and the history.

Fields follow the OCI image-spec ``config.json`` plus the Docker additions BuildKit writes
(``Healthcheck``, ``Shell``, ``OnBuild``, ``ArgsEscaped``). Field names in JSON are the
spec's; unknown fields (``container_config``, ``docker_version``...) are dropped on read, as
BuildKit does when it builds on a base. Values are frozen; "changing" one means
:func:`dataclasses.replace` or :meth:`ContainerConfig.with_changes`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import field

from builder.errors import ImageFormatError
from builder.graph import Platform
from builder.lazyclasses import dataclass
from builder.oci._fields import Fields, canonical_json, load_object
from builder.oci.digest import Digest


@dataclass(frozen=True)
class HealthConfig:
    """Docker's HEALTHCHECK; durations in nanoseconds, 0 meaning "inherit the default"."""

    test: tuple[str, ...]
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0

    def to_mapping(self) -> dict[str, object]:
        out: dict[str, object] = {"Test": list(self.test)}
        for key, value in (
            ("Interval", self.interval),
            ("Timeout", self.timeout),
            ("StartPeriod", self.start_period),
            ("StartInterval", self.start_interval),
            ("Retries", self.retries),
        ):
            if value:
                out[key] = value
        return out

    @classmethod
    def from_fields(cls, fields: Fields) -> HealthConfig:
        return cls(
            test=fields.strings("Test") or (),
            interval=fields.integer("Interval"),
            timeout=fields.integer("Timeout"),
            start_period=fields.integer("StartPeriod"),
            start_interval=fields.integer("StartInterval"),
            retries=fields.integer("Retries"),
        )


@dataclass(frozen=True)
class ContainerConfig:
    """The ``config`` object: how a container of the image starts.

    ``cmd``, ``entrypoint``, ``shell`` and ``on_build`` are ``None`` when unset, which is not
    the same as an empty list (``ENTRYPOINT []`` clears an inherited one).
    """

    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    volumes: tuple[str, ...] = ()
    working_dir: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    stop_signal: str = ""
    healthcheck: HealthConfig | None = None
    shell: tuple[str, ...] | None = None
    on_build: tuple[str, ...] | None = None
    args_escaped: bool = False

    def to_mapping(self) -> dict[str, object]:
        """The JSON object, Go's ``omitempty`` style: unset fields are left out."""
        out: dict[str, object] = {}
        if self.user:
            out["User"] = self.user
        if self.exposed_ports:
            out["ExposedPorts"] = {port: {} for port in self.exposed_ports}
        if self.env:
            out["Env"] = list(self.env)
        for key, words in (
            ("Entrypoint", self.entrypoint),
            ("Cmd", self.cmd),
            ("Shell", self.shell),
            ("OnBuild", self.on_build),
        ):
            if words is not None:
                out[key] = list(words)
        if self.volumes:
            out["Volumes"] = {volume: {} for volume in self.volumes}
        if self.working_dir:
            out["WorkingDir"] = self.working_dir
        if self.labels:
            out["Labels"] = dict(self.labels)
        if self.stop_signal:
            out["StopSignal"] = self.stop_signal
        if self.healthcheck is not None:
            out["Healthcheck"] = self.healthcheck.to_mapping()
        if self.args_escaped:
            out["ArgsEscaped"] = True
        return out

    @classmethod
    def from_mapping(cls, value: Mapping[str, object], where: str = "config") -> ContainerConfig:
        """Read a ``config`` object (as in a graph stage's ``base_config``)."""
        return cls.from_fields(Fields(dict(value), where))

    @classmethod
    def from_fields(cls, fields: Fields) -> ContainerConfig:
        health = fields.child("Healthcheck")
        return cls(
            user=fields.text("User"),
            exposed_ports=fields.key_set("ExposedPorts"),
            env=fields.strings("Env") or (),
            entrypoint=fields.strings("Entrypoint"),
            cmd=fields.strings("Cmd"),
            volumes=fields.key_set("Volumes"),
            working_dir=fields.text("WorkingDir"),
            labels=fields.string_map("Labels"),
            stop_signal=fields.text("StopSignal"),
            healthcheck=HealthConfig.from_fields(health) if health is not None else None,
            shell=fields.strings("Shell"),
            on_build=fields.strings("OnBuild"),
            args_escaped=fields.flag("ArgsEscaped"),
        )

    def with_changes(self, changes: Iterable[tuple[str, object]]) -> ContainerConfig:
        """A new config with whole JSON fields replaced (``None`` removes one).

        Takes ``(field, value)`` pairs, the shape of the graph's ``ConfigChange``; the result
        is validated as if read from JSON, so a bad value fails here, not at export.
        """
        mapping = self.to_mapping()
        for name, value in changes:
            if value is None:
                mapping.pop(name, None)
            else:
                mapping[name] = value
        return ContainerConfig.from_mapping(mapping)


@dataclass(frozen=True)
class History:
    """One history entry; ``empty_layer`` marks a step with no layer (ENV, CMD...)."""

    created: str = ""
    created_by: str = ""
    author: str = ""
    comment: str = ""
    empty_layer: bool = False

    def to_mapping(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for key, text in (
            ("created", self.created),
            ("created_by", self.created_by),
            ("author", self.author),
            ("comment", self.comment),
        ):
            if text:
                out[key] = text
        if self.empty_layer:
            out["empty_layer"] = True
        return out

    @classmethod
    def from_fields(cls, fields: Fields) -> History:
        return cls(
            created=fields.text("created"),
            created_by=fields.text("created_by"),
            author=fields.text("author"),
            comment=fields.text("comment"),
            empty_layer=fields.flag("empty_layer"),
        )


@dataclass(frozen=True)
class RootFS:
    """``rootfs``: the uncompressed digests of the layers, bottom first."""

    diff_ids: tuple[Digest, ...] = ()
    type: str = "layers"

    def to_mapping(self) -> dict[str, object]:
        return {"type": self.type, "diff_ids": list(self.diff_ids)}

    @classmethod
    def from_fields(cls, fields: Fields) -> RootFS:
        kind = fields.text("type")
        if kind != "layers":
            raise ImageFormatError(f"{fields.where}: type must be 'layers', not {kind!r}")
        diff_ids = fields.strings("diff_ids") or ()
        try:
            return cls(diff_ids=tuple(Digest(item) for item in diff_ids), type=kind)
        except ImageFormatError as err:
            raise ImageFormatError(f"{fields.where}.diff_ids: {err}") from err


@dataclass(frozen=True)
class ImageConfig:
    """An image config document (``application/vnd.oci.image.config.v1+json``)."""

    architecture: str
    os: str
    variant: str = ""
    os_version: str = ""
    created: str = ""
    author: str = ""
    config: ContainerConfig = field(default_factory=ContainerConfig)
    rootfs: RootFS = field(default_factory=RootFS)
    history: tuple[History, ...] = ()

    @property
    def platform(self) -> Platform:
        return Platform(os=self.os, architecture=self.architecture, variant=self.variant)

    def to_mapping(self) -> dict[str, object]:
        out: dict[str, object] = {
            "architecture": self.architecture,
            "os": self.os,
            "config": self.config.to_mapping(),
            "rootfs": self.rootfs.to_mapping(),
        }
        for key, text in (
            ("variant", self.variant),
            ("os.version", self.os_version),
            ("created", self.created),
            ("author", self.author),
        ):
            if text:
                out[key] = text
        if self.history:
            out["history"] = [entry.to_mapping() for entry in self.history]
        return out

    def to_json(self) -> bytes:
        """Canonical bytes (see :func:`builder.oci._fields.canonical_json`)."""
        return canonical_json(self.to_mapping())

    @classmethod
    def from_json(cls, document: bytes) -> ImageConfig:
        fields = Fields(load_object(document, "image config"), "image config")
        architecture = fields.required_text("architecture")
        os_name = fields.required_text("os")
        if not architecture or not os_name:
            raise ImageFormatError("image config: 'architecture' and 'os' must not be empty")
        rootfs = fields.child("rootfs")
        if rootfs is None:
            raise ImageFormatError("image config: field 'rootfs' is missing")
        container = fields.child("config")
        return cls(
            architecture=architecture,
            os=os_name,
            variant=fields.text("variant"),
            os_version=fields.text("os.version"),
            created=fields.text("created"),
            author=fields.text("author"),
            config=ContainerConfig.from_fields(container) if container else ContainerConfig(),
            rootfs=RootFS.from_fields(rootfs),
            history=tuple(History.from_fields(entry) for entry in fields.children("history")),
        )

    def with_layer(self, diff_id: Digest, history: History) -> ImageConfig:
        """A new config with one more layer and its history entry on top."""
        return dataclasses.replace(
            self,
            rootfs=RootFS(diff_ids=(*self.rootfs.diff_ids, diff_id)),
            history=(*self.history, dataclasses.replace(history, empty_layer=False)),
        )
