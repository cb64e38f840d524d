"""HEALTHCHECK as a typed instruction: ``NONE``, or ``CMD`` with its timing flags.

Durations are read as Go's ``time.ParseDuration`` reads them; a non-zero duration under
1ms is refused (BuildKit's ``container.MinimumDuration``), and 0 means "use the default".
"""

from __future__ import annotations

from builder.errors import DockerfileError
from builder.lazyclasses import dataclass
from builder.source import SourceSpan
from frontends.dockerfile._goformat import parse_go_duration
from frontends.dockerfile._instruction_args import handle_json_args, parse_flags, require_at_least_one
from frontends.dockerfile.ast import Node


@dataclass(frozen=True)
class HealthcheckInstruction:
    """``HEALTHCHECK``: ``test`` is ``("NONE",)``, ``("CMD", ...)`` or ``("CMD-SHELL", cmd)``.

    Durations are nanoseconds, 0 meaning "inherit the default", as in the image config.
    """

    span: SourceSpan
    test: tuple[str, ...]
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0


def parse_healthcheck(node: Node) -> HealthcheckInstruction:
    require_at_least_one(node)
    kind = node.args[0].upper()
    if kind == "NONE":
        if len(node.args) != 1:
            raise DockerfileError("HEALTHCHECK NONE takes no arguments", node.span)
        parse_flags(node)
        return HealthcheckInstruction(node.span, ("NONE",))
    names = ("interval", "timeout", "start-period", "start-interval", "retries")
    flags = parse_flags(node, [(name, "") for name in names])
    if kind != "CMD":
        raise DockerfileError(f'Unknown type "{kind}" in HEALTHCHECK (try CMD)', node.span)
    command = handle_json_args(node.args[1:], node.json_form)
    if not command:
        raise DockerfileError("Missing command after HEALTHCHECK CMD", node.span)
    test = ("CMD", *command) if node.json_form else ("CMD-SHELL", *command)
    retries = 0
    if flags.string("retries"):
        try:
            retries = int(flags.string("retries"))
        except ValueError:
            raise DockerfileError(f'invalid retries "{flags.string("retries")}"', node.span) from None
        if retries < 0:
            raise DockerfileError(f"--retries cannot be negative ({retries})", node.span)
    return HealthcheckInstruction(
        span=node.span,
        test=test,
        interval=_interval(node, flags.string("interval"), "interval"),
        timeout=_interval(node, flags.string("timeout"), "timeout"),
        start_period=_interval(node, flags.string("start-period"), "start-period"),
        start_interval=_interval(node, flags.string("start-interval"), "start-interval"),
        retries=retries,
    )


def _interval(node: Node, text: str, name: str) -> int:
    """A HEALTHCHECK duration: empty or 0 means the default; otherwise at least 1ms."""
    if not text:
        return 0
    try:
        duration = parse_go_duration(text)
    except DockerfileError as err:
        raise DockerfileError(err.message, node.span) from err
    if duration != 0 and duration < 1_000_000:
        raise DockerfileError(f'Interval "{name}" cannot be less than 1ms', node.span)
    return duration
