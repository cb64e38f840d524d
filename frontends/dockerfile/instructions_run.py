"""RUN as a typed instruction: its command, heredocs and the ``--mount``, ``--network``,
``--security`` and ``--device`` flags, each option checked as BuildKit checks it.

Mount option values are kept as written; the dispatcher expands them with the stage's
environment and turns them into graph mounts. Only ``from`` may not hold a variable: a
stage must be named literally so that the stage graph is known before anything runs.
"""

from __future__ import annotations

from typing import Literal

from builder.errors import DockerfileError
from builder.lazyclasses import dataclass
from builder.source import SourceSpan
from frontends.dockerfile._goformat import go_quote
from frontends.dockerfile._instruction_args import handle_json_args, parse_flags
from frontends.dockerfile.ast import Heredoc, Node
from frontends.dockerfile.suggest import did_you_mean

NetworkMode = Literal["default", "none", "host"]
SecurityMode = Literal["sandbox", "insecure"]
Sharing = Literal["shared", "private", "locked"]

MOUNT_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
NETWORK_MODES: dict[str, NetworkMode] = {"default": "default", "none": "none", "host": "host"}
SECURITY_MODES: dict[str, SecurityMode] = {"sandbox": "sandbox", "insecure": "insecure"}
SHARING_MODES: dict[str, Sharing] = {"shared": "shared", "private": "private", "locked": "locked"}
_MOUNT_KEYS = (
    "type", "from", "source", "target", "readonly", "id", "sharing", "required", "size",
    "mode", "uid", "gid", "src", "dst", "destination", "ro", "rw", "readwrite", "env",
)  # fmt: skip
_KEY_ALIASES = {"src": "source", "dst": "target", "destination": "target", "ro": "readonly"}
_TRUE = ("1", "t", "true")
_FALSE = ("0", "f", "false")


@dataclass(frozen=True)
class RunMountSpec:
    """One ``--mount``, its options as written; ``readonly`` already defaulted per type."""

    type: str
    target: str = ""
    source: str = ""
    from_: str = ""
    id: str = ""
    sharing: Sharing = "shared"
    mode: str = ""
    uid: str = ""
    gid: str = ""
    size: str = ""
    env: str | None = None
    readonly: bool = False
    required: bool = False


@dataclass(frozen=True)
class Device:
    """``--device=name[,required]``: a CDI device asked for by a RUN."""

    name: str
    required: bool = False


@dataclass(frozen=True)
class RunInstruction:
    """``RUN``: ``command`` is the JSON list, or one shell-form string (``prepend_shell``)."""

    span: SourceSpan
    command: tuple[str, ...]
    prepend_shell: bool
    heredocs: tuple[Heredoc, ...] = ()
    mounts: tuple[RunMountSpec, ...] = ()
    network: NetworkMode = "default"
    security: SecurityMode = "sandbox"
    devices: tuple[Device, ...] = ()
    flags_used: tuple[str, ...] = ()


def parse_run(node: Node) -> RunInstruction:
    flags = parse_flags(
        node, [("mount", None), ("network", "default"), ("security", "sandbox"), ("device", None)]
    )
    network = flags.string("network")
    if network not in NETWORK_MODES:
        raise DockerfileError(f"unsupported network mode {go_quote(network)}", node.span)
    security = flags.string("security")
    if security not in SECURITY_MODES:
        raise DockerfileError(f"unsupported security mode {go_quote(security)}", node.span)
    mounts = tuple(parse_mount(value, node.span) for value in flags.strings("mount"))
    devices = tuple(parse_device(value, node.span) for value in flags.strings("device"))
    return RunInstruction(
        span=node.span,
        command=handle_json_args(node.args, node.json_form),
        prepend_shell=not node.json_form,
        heredocs=node.heredocs,
        mounts=mounts,
        network=NETWORK_MODES[network],
        security=SECURITY_MODES[security],
        devices=devices,
        flags_used=flags.used(),
    )


def _csv_fields(value: str) -> list[str]:
    """Comma-separated fields where a double-quoted field may hold commas (Go's csv reader)."""
    import csv  # only a RUN with --mount or --device parses any

    rows = list(csv.reader([value]))
    return [field for field in rows[0] if field] if rows else []


def _parse_bool(key: str, value: str, span: SourceSpan) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise DockerfileError(f"invalid value for {key}: {value}", span)


def parse_mount(value: str, span: SourceSpan) -> RunMountSpec:
    """One ``--mount`` value: ``type=cache,target=/x,sharing=locked``."""
    fields = _csv_fields(value)
    mount_type = "bind"
    for field in fields:
        key, _, field_value = field.partition("=")
        if key.lower() == "type":
            mount_type = field_value.lower()
            if mount_type not in MOUNT_TYPES:
                raise DockerfileError(
                    f"unsupported mount type {go_quote(field_value)}"
                    + did_you_mean(field_value, MOUNT_TYPES, case_sensitive=True),
                    span,
                )
    options: dict[str, str] = {}
    readonly: bool | None = None
    required = False
    for field in fields:
        key, has_value, field_value = field.partition("=")
        key = key.lower()
        if not has_value:
            if key in ("readonly", "ro"):
                readonly = True
            elif key in ("readwrite", "rw"):
                readonly = False
            elif key == "required" and mount_type in ("secret", "ssh"):
                required = True
            elif key == "required":
                raise DockerfileError(f"unexpected key '{key}' for mount type '{mount_type}'", span)
            else:
                raise DockerfileError(f"invalid field '{field}' must be a key=value pair", span)
            continue
        if key not in _MOUNT_KEYS:
            raise DockerfileError(
                f"unexpected key '{key}' in '{field}'" + did_you_mean(key, _MOUNT_KEYS, case_sensitive=True),
                span,
            )
        key = _KEY_ALIASES.get(key, key)
        if key == "readonly":
            readonly = _parse_bool(key, field_value, span)
        elif key in ("readwrite", "rw"):
            readonly = not _parse_bool(key, field_value, span)
        elif key == "required":
            if mount_type not in ("secret", "ssh"):
                raise DockerfileError(f"unexpected key '{key}' for mount type '{mount_type}'", span)
            required = _parse_bool(key, field_value, span)
        elif key == "size" and mount_type != "tmpfs":
            raise DockerfileError(f"unexpected key '{key}' for mount type '{mount_type}'", span)
        elif key == "from" and "$" in field_value:
            raise DockerfileError(
                "'from' doesn't support variable expansion, define alias stage instead", span
            )
        elif key != "type":
            options[key] = field_value
    return _checked_mount(mount_type, options, readonly, required, span)


def _checked_mount(
    mount_type: str, options: dict[str, str], readonly: bool | None, required: bool, span: SourceSpan
) -> RunMountSpec:
    sharing = options.get("sharing", "").lower()
    if sharing and mount_type != "cache":
        raise DockerfileError(f"invalid cache sharing set for {mount_type} mount", span)
    if sharing and sharing not in SHARING_MODES:
        raise DockerfileError(f"unsupported sharing value {go_quote(options['sharing'])}", span)
    if mount_type in ("secret", "ssh"):
        if options.get("from"):
            raise DockerfileError(f"{mount_type} mount should not have a from", span)
        if options.get("source") and options.get("id"):
            raise DockerfileError("both source and id can't be set", span)
    if mount_type == "secret" and not (
        options.get("source") or options.get("target") or options.get("id") or "env" in options
    ):
        raise DockerfileError("one of source, target required", span)
    for key in ("mode", "uid", "gid"):
        if key in options:
            try:
                int(options[key], 8 if key == "mode" else 10)
            except ValueError:
                raise DockerfileError(f"invalid value {options[key]} for {key}", span) from None
    if readonly is None:
        readonly = mount_type not in ("cache", "tmpfs")
    return RunMountSpec(
        type=mount_type,
        target=options.get("target", ""),
        source=options.get("source", ""),
        from_=options.get("from", ""),
        id=options.get("id", ""),
        sharing=SHARING_MODES.get(sharing, "shared"),
        mode=options.get("mode", ""),
        uid=options.get("uid", ""),
        gid=options.get("gid", ""),
        size=options.get("size", ""),
        env=options.get("env"),
        readonly=readonly,
        required=required,
    )


def parse_device(value: str, span: SourceSpan) -> Device:
    """``--device``: a name (``vendor.com/class=name`` or ``name=...``) and ``required``."""
    name = ""
    required = False
    for field in _csv_fields(value):
        key, has_value, field_value = field.partition("=")
        if key == "required":
            required = _parse_bool(key, field_value, span) if has_value else True
            continue
        candidate = field_value if key == "name" else field
        if name:
            raise DockerfileError(f"device name already set to {name}", span)
        name = candidate
    if not name:
        raise DockerfileError(f"device name is required: {value}", span)
    return Device(name=name, required=required)
