"""Typed instructions → graph ops, one small function per instruction (see ``HANDLERS``).

:func:`dispatch_stage` walks one stage: it resolves the base (scratch, an earlier stage or
an image through the :class:`ImageResolver`), applies BuildKit's defaults (a ``PATH`` when
the base has none, ``WorkingDir "/"`` on scratch), runs the base's ONBUILD triggers, then
hands each instruction to its handler. Handlers expand words with the stage's environment
(the base config's Env, then ENV, over the ARGs in scope) and record history text as
BuildKit writes it. RUN is in :mod:`dispatch_run`, ADD and COPY in :mod:`dispatch_copy`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from builder.errors import DockerfileError
from builder.graph import (
    Base,
    ConfigChange,
    ConfigField,
    ConfigOp,
    ContextSource,
    CopyOp,
    ImageBase,
    MkdirOp,
    Platform,
    ScratchBase,
    Stage,
    StageBase,
)
from builder.resolver import ImageResolver
from builder.source import SourceSpan
from frontends.dockerfile._dispatch_state import (
    DEFAULT_PATH,
    IMAGE_CONTEXT_SCHEME,
    BuildContext,
    StageState,
    expand,
    join_path,
)
from frontends.dockerfile._goformat import format_go_duration, go_list, go_quote, go_quoted_list
from frontends.dockerfile._ports import exposed_ports
from frontends.dockerfile.dispatch_copy import dispatch_copy
from frontends.dockerfile.dispatch_run import dispatch_run
from frontends.dockerfile.instructions import (
    ArgInstruction,
    CmdInstruction,
    CopyInstruction,
    EntrypointInstruction,
    EnvInstruction,
    ExposeInstruction,
    HealthcheckInstruction,
    Instruction,
    LabelInstruction,
    MaintainerInstruction,
    OnbuildInstruction,
    RunInstruction,
    ShellInstruction,
    StopsignalInstruction,
    UserInstruction,
    VolumeInstruction,
    WorkdirInstruction,
    parse_instruction,
)
from frontends.dockerfile.parser import parse
from frontends.dockerfile.stages import StageSpec


def _config_op(state: StageState, span: SourceSpan, created_by: str, **changes: object) -> None:
    """Record a config-only step, also applying it to the stage's running config."""
    config = tuple(ConfigChange(name, value) for name, value in changes.items())  # type: ignore[arg-type]
    for change in config:
        state.config[change.field] = change.value
    state.ops.append(ConfigOp(location=span, created_by=created_by, config=config))


def _env(build: BuildContext, state: StageState, instruction: EnvInstruction) -> None:
    scope = state.expansion_env()
    pairs = [
        (build.lexer.process_word(pair.key, scope), build.lexer.process_word(pair.value, scope))
        for pair in instruction.env
    ]
    for key, value in pairs:
        state.env[key] = value
    text = " ".join(f"{key}={value}" for key, value in pairs)
    _config_op(state, instruction.span, f"ENV {text}", Env=state.env_list())


def _label(build: BuildContext, state: StageState, instruction: LabelInstruction) -> None:
    scope = state.expansion_env()
    pairs = [
        (build.lexer.process_word(pair.key, scope), build.lexer.process_word(pair.value, scope))
        for pair in instruction.labels
    ]
    existing = state.config.get("Labels")
    labels = dict(existing) if isinstance(existing, dict) else {}
    labels.update(pairs)
    text = " ".join(f"{key}={value}" for key, value in pairs)
    _config_op(state, instruction.span, f"LABEL {text}", Labels=labels)


def _arg(build: BuildContext, state: StageState, instruction: ArgInstruction) -> None:
    """Bring args into scope: a build arg wins, then the default, then the global value.

    The history shows the default as written (expanded), or the inherited global value,
    never a build arg's value, as BuildKit does.
    """
    written = []
    for spec in instruction.args:
        build.used_args.add(spec.key)
        shown = expand(build, state, spec.default) if spec.default is not None else None
        if shown is None and spec.key not in build.arg_values:
            shown = build.meta_values.get(spec.key)
        value = build.arg_values.get(spec.key, shown)
        state.args.pop(spec.key, None)
        state.args[spec.key] = value or ""
        written.append(spec.key if shown is None else f"{spec.key}={shown}")
    state.ops.append(ConfigOp(location=instruction.span, created_by="ARG " + " ".join(written)))


def _maintainer(build: BuildContext, state: StageState, instruction: MaintainerInstruction) -> None:
    _config_op(state, instruction.span, f"MAINTAINER {instruction.maintainer}")


def _expose(build: BuildContext, state: StageState, instruction: ExposeInstruction) -> None:
    scope = state.expansion_env()
    ports: list[str] = []
    for spec in instruction.ports:
        for word in build.lexer.process_words(spec, scope):
            ports.extend(port for port in exposed_ports(word) if port not in ports)
    existing = state.config.get("ExposedPorts")
    exposed: dict[str, object] = dict(existing) if isinstance(existing, dict) else {}
    exposed.update((port, {}) for port in ports)
    text = "map[" + " ".join(f"{port}:{{}}" for port in sorted(ports)) + "]"
    _config_op(state, instruction.span, f"EXPOSE {text}", ExposedPorts=exposed)


def _volume(build: BuildContext, state: StageState, instruction: VolumeInstruction) -> None:
    volumes = [expand(build, state, volume) for volume in instruction.volumes]
    if any(not volume for volume in volumes):
        raise DockerfileError("VOLUME specified can not be an empty string", instruction.span)
    existing = state.config.get("Volumes")
    merged: dict[str, object] = dict(existing) if isinstance(existing, dict) else {}
    merged.update((volume, {}) for volume in volumes)
    _config_op(state, instruction.span, f"VOLUME {go_list(volumes)}", Volumes=merged)


def _user(build: BuildContext, state: StageState, instruction: UserInstruction) -> None:
    user = expand(build, state, instruction.user)
    _config_op(state, instruction.span, f"USER {user}", User=user)


def _workdir(build: BuildContext, state: StageState, instruction: WorkdirInstruction) -> None:
    """An absolute WORKDIR is kept as written (trailing slash too); a relative one is joined."""
    path = expand(build, state, instruction.path)
    working_dir = path if path.startswith("/") else join_path(state.working_dir, path)
    state.config["WorkingDir"] = working_dir
    state.ops.append(
        MkdirOp(
            location=instruction.span,
            created_by=f"WORKDIR {working_dir}",
            path=working_dir,
            user=state.user,
            config=(ConfigChange("WorkingDir", working_dir),),
        )
    )


def _stopsignal(build: BuildContext, state: StageState, instruction: StopsignalInstruction) -> None:
    """The expanded value must name a signal, as BuildKit checks it when dispatching (so
    ``STOPSIGNAL $SIG`` is judged by the value of ``SIG``); it is kept as written."""
    signal = expand(build, state, instruction.signal)
    from frontends.dockerfile.dispatch_signals import parse_signal  # only for a STOPSIGNAL

    if parse_signal(signal) is None:
        raise DockerfileError(f"invalid signal: {signal}", instruction.span)
    _config_op(state, instruction.span, f"STOPSIGNAL {signal}", StopSignal=signal)


def _command(state: StageState, command: tuple[str, ...], prepend_shell: bool) -> list[str]:
    return [*state.shell, *command] if prepend_shell else list(command)


def _cmd(build: BuildContext, state: StageState, instruction: CmdInstruction) -> None:
    command = _command(state, instruction.command, instruction.prepend_shell)
    state.cmd_set = True
    _config_op(state, instruction.span, f"CMD {go_quoted_list(command)}", Cmd=command)


def _entrypoint(build: BuildContext, state: StageState, instruction: EntrypointInstruction) -> None:
    """ENTRYPOINT drops a CMD inherited from the base, but not one set in this stage."""
    command = _command(state, instruction.command, instruction.prepend_shell)
    created_by = f"ENTRYPOINT {go_quoted_list(command)}"
    if state.cmd_set:
        _config_op(state, instruction.span, created_by, Entrypoint=command)
    else:
        _config_op(state, instruction.span, created_by, Entrypoint=command, Cmd=None)


def _shell(build: BuildContext, state: StageState, instruction: ShellInstruction) -> None:
    shell = list(instruction.shell)
    _config_op(state, instruction.span, f"SHELL {go_list(shell)}", Shell=shell)


def _healthcheck(build: BuildContext, state: StageState, instruction: HealthcheckInstruction) -> None:
    health: dict[str, object] = {"Test": list(instruction.test)}
    durations = {
        "Interval": instruction.interval,
        "Timeout": instruction.timeout,
        "StartPeriod": instruction.start_period,
        "StartInterval": instruction.start_interval,
    }
    health.update((key, value) for key, value in durations.items() if value)
    if instruction.retries:
        health["Retries"] = instruction.retries
    quoted = " ".join(go_quote(format_go_duration(value)) for value in durations.values())
    retries = (
        f"'\\x{instruction.retries:02x}'" if instruction.retries < 0x20 else repr(chr(instruction.retries))
    )
    created_by = f"HEALTHCHECK &{{{go_quoted_list(instruction.test)} {quoted} {retries}}}"
    _config_op(state, instruction.span, created_by, Healthcheck=health)


def _onbuild(build: BuildContext, state: StageState, instruction: OnbuildInstruction) -> None:
    """Recorded in the config for child images; BuildKit leaves it out of the history."""
    existing = state.config.get("OnBuild")
    triggers = [*existing, instruction.expression] if isinstance(existing, list) else [instruction.expression]
    state.config["OnBuild"] = triggers
    state.ops.append(
        ConfigOp(
            location=instruction.span,
            created_by=f"ONBUILD {instruction.expression}",
            config=(ConfigChange("OnBuild", triggers),),
            in_history=False,
        )
    )


HANDLERS: dict[type[Any], Callable[[BuildContext, StageState, Any], None]] = {
    RunInstruction: dispatch_run,
    CopyInstruction: dispatch_copy,
    EnvInstruction: _env,
    LabelInstruction: _label,
    ArgInstruction: _arg,
    MaintainerInstruction: _maintainer,
    ExposeInstruction: _expose,
    VolumeInstruction: _volume,
    UserInstruction: _user,
    WorkdirInstruction: _workdir,
    StopsignalInstruction: _stopsignal,
    CmdInstruction: _cmd,
    EntrypointInstruction: _entrypoint,
    ShellInstruction: _shell,
    HealthcheckInstruction: _healthcheck,
    OnbuildInstruction: _onbuild,
}


def dispatch_instruction(build: BuildContext, state: StageState, instruction: Instruction) -> None:
    """Run one handler; an error without a location gets the instruction's."""
    try:
        HANDLERS[type(instruction)](build, state, instruction)
    except DockerfileError as err:
        if err.span is not None:
            raise
        raise DockerfileError(err.message, instruction.span) from err


def _base(
    build: BuildContext, spec: StageSpec, resolver: ImageResolver, platform: Platform
) -> tuple[Base, dict[str, object], set[int]]:
    """Where the stage starts, the config it starts with, and the stage it reads (if any)."""
    if spec.base.lower() == "scratch":
        return ScratchBase(), {}, set()
    found = build.table.find(spec.base) if not spec.base.isdigit() else None
    if found is not None and found.index < spec.index:
        return StageBase(found.index), dict(build.finished[found.index]), {found.index}
    reference = build.build_contexts.get(spec.base, f"{IMAGE_CONTEXT_SCHEME}{spec.base}")
    if not reference.startswith(IMAGE_CONTEXT_SCHEME):
        return ScratchBase(), {}, set()  # a directory: see _context_copy
    image = reference.removeprefix(IMAGE_CONTEXT_SCHEME)
    resolved = resolver.resolve(image, platform)
    return ImageBase(image), dict(resolved.config), set()


def _directory_context(build: BuildContext, name: str) -> bool:
    value = build.build_contexts.get(name)
    return value is not None and not value.startswith(IMAGE_CONTEXT_SCHEME)


def _context_copy(name: str, span: SourceSpan) -> CopyOp:
    """A stage that starts from a directory context (``--build-context NAME=DIR`` and
    ``FROM NAME``) starts as scratch with the directory's files as its first layer."""
    return CopyOp(
        location=span,
        created_by=f"build context {name}",
        source=ContextSource(name=name),
        paths=(".",),
        dest="/",
    )


def _env_from_config(config: dict[str, object]) -> dict[str, str]:
    env: dict[str, str] = {}
    entries = config.get("Env")
    for entry in entries if isinstance(entries, list) else []:
        key, _, value = str(entry).partition("=")
        env[key] = value
    return env


def _triggers(state: StageState, escape: str, span: SourceSpan) -> Iterable[Instruction]:
    """The base's ONBUILD triggers as typed instructions, located at the FROM line."""
    triggers = state.config.get("OnBuild")
    for trigger in triggers if isinstance(triggers, list) else []:
        prefix = "" if escape == "\\" else f"# escape={escape}\n"
        try:
            nodes = parse(prefix + str(trigger), file=span.file).nodes
            instructions = [parse_instruction(node) for node in nodes]
        except DockerfileError as err:
            raise DockerfileError(f"ONBUILD trigger {trigger!r} of the base: {err.message}", span) from err
        for instruction in instructions:
            yield dataclasses.replace(instruction, span=span)


def dispatch_stage(build: BuildContext, spec: StageSpec, resolver: ImageResolver, escape: str) -> Stage:
    """All ops of one stage; its final config is recorded in ``build.finished``."""
    override = spec.name and spec.name in build.build_contexts
    if override:
        # --build-context NAME=... replaces a stage of that name entirely, as in BuildKit.
        spec = dataclasses.replace(spec, base=spec.name, instructions=())
    base, base_config, reads = _base(build, spec, resolver, spec.platform)
    config = dict(base_config)
    state = StageState(spec=spec, config=config, env=_env_from_config(config), reads=reads)
    if isinstance(base, StageBase):
        state.inherited_args.update(build.finished_args.get(base.stage, {}))
    span = spec.from_.span
    defaults: dict[ConfigField, object] = {}
    if "PATH" not in state.env:
        state.env["PATH"] = DEFAULT_PATH.partition("=")[2]
        defaults["Env"] = state.env_list()
    if isinstance(base, ScratchBase):
        defaults["WorkingDir"] = "/"
    triggers = list(_triggers(state, escape, span))
    if "OnBuild" in config:
        defaults["OnBuild"] = None
    if defaults:
        changes = tuple(ConfigChange(name, value) for name, value in defaults.items())
        for change in changes:
            state.config[change.field] = change.value
        state.ops.append(ConfigOp(location=span, created_by="", config=changes, in_history=False))
    state.config.pop("OnBuild", None)
    if isinstance(base, ScratchBase) and _directory_context(build, spec.base):
        state.ops.append(_context_copy(spec.base, span))
    for instruction in [*triggers, *spec.instructions]:
        dispatch_instruction(build, state, instruction)
    build.finished[spec.index] = dict(state.config)
    build.finished_args[spec.index] = {**state.inherited_args, **state.args}
    return Stage(
        index=spec.index,
        name=spec.name,
        base=base,
        platform=spec.platform,
        ops=tuple(state.ops),
        location=span,
        reads=frozenset(state.reads),
        base_config=base_config,
    )
