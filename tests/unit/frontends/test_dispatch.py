"""Dispatch: each instruction's ops, config changes and history text, expansion with the
base config from a resolver, and the differential corpus's final configs and histories."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from builder.errors import DockerfileError
from builder.graph import (
    BindMount,
    BuildGraph,
    CacheMount,
    ConfigChange,
    ConfigOp,
    ContextSource,
    CopyOp,
    Exec,
    GitSource,
    ImageSource,
    InlineFile,
    InlineSource,
    MkdirOp,
    Op,
    Platform,
    ScratchBase,
    SecretMount,
    SshMount,
    StageBase,
    StageSource,
    TmpfsMount,
    UrlSource,
)
from builder.resolver import ResolvedImage
from frontends.dockerfile.convert import build_graph
from frontends.dockerfile.parser import parse
from tests.conftest import SHARED_DIR, require_shared

BASE_CONFIG = {
    "Env": ["PATH=/opt/bin:/bin", "HOME=/home/app"],
    "WorkingDir": "/srv",
    "User": "app",
    "Cmd": ["sh"],
}


class FakeResolver:
    """Every image has the config given for its reference (or an empty one)."""

    def __init__(self, configs: Mapping[str, Mapping[str, object]]) -> None:
        self.configs = configs
        self.asked: list[str] = []

    def resolve(self, ref: str, platform: Platform) -> ResolvedImage:
        self.asked.append(ref)
        return ResolvedImage(ref, "sha256:" + "0" * 64, platform, dict(self.configs.get(ref, {})))


def graph(text: str, configs: Mapping[str, Mapping[str, object]] | None = None, **options: Any) -> BuildGraph:
    resolver = FakeResolver(configs if configs is not None else {"base": BASE_CONFIG})
    return build_graph(parse(text), resolver=resolver, **options)


def ops(text: str, **options: Any) -> list[Op]:
    """The ops of the last stage after the stage-start defaults."""
    stage = graph(text, **options).stages[-1]
    return [op for op in stage.ops if not (isinstance(op, ConfigOp) and op.created_by == "")]


def only(text: str, **options: Any) -> Op:
    (op,) = ops(text, **options)
    return op


def test_stage_start_defaults_path_and_scratch_workdir() -> None:
    stage = graph("FROM scratch\n").stages[0]
    assert stage.base == ScratchBase()
    assert stage.ops == (
        ConfigOp(
            location=stage.location,
            created_by="",
            config=(
                ConfigChange("Env", ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]),
                ConfigChange("WorkingDir", "/"),
            ),
            in_history=False,
        ),
    )
    assert graph("FROM base\n").stages[0].ops == ()
    assert graph("FROM base\n").stages[0].base_config == BASE_CONFIG


def test_workdir_expands_base_env_and_is_relative_to_the_previous_one() -> None:
    first, second, third = ops("FROM base\nWORKDIR $HOME\nWORKDIR sub/dir/\nWORKDIR /tmp/\n")
    assert first == MkdirOp(
        location=first.location,
        created_by="WORKDIR /home/app",
        path="/home/app",
        user="app",
        config=(ConfigChange("WorkingDir", "/home/app"),),
    )
    assert isinstance(second, MkdirOp) and second.path == "/home/app/sub/dir"
    assert isinstance(third, MkdirOp) and third.path == "/tmp/"
    assert third.created_by == "WORKDIR /tmp/"


def test_workdir_is_made_by_the_current_user() -> None:
    _, mkdir = ops("FROM scratch\nUSER daemon\nWORKDIR /created\n")
    assert isinstance(mkdir, MkdirOp) and mkdir.user == "daemon"


def test_run_shell_form_uses_the_shell_and_is_never_expanded() -> None:
    run = only("FROM base\nRUN echo $X\n")
    assert isinstance(run, Exec)
    assert run.argv == ("/bin/sh", "-c", "echo $X")
    assert run.env == ("PATH=/opt/bin:/bin", "HOME=/home/app")
    assert run.cwd == "/srv"
    assert run.user == "app"
    assert run.shell_form is True
    assert run.created_by == "RUN /bin/sh -c echo $X # buildkit"


def test_run_json_form_and_shell_instruction() -> None:
    _, shell_run, json_run = ops('FROM base\nSHELL ["/bin/bash", "-xc"]\nRUN env\nRUN ["ls", "-la"]\n')
    assert isinstance(shell_run, Exec) and shell_run.argv == ("/bin/bash", "-xc", "env")
    assert isinstance(json_run, Exec) and json_run.argv == ("ls", "-la")
    assert json_run.shell_form is False
    assert json_run.created_by == "RUN ls -la # buildkit"


def test_run_env_has_image_env_then_args_and_env_wins_over_arg() -> None:
    run = ops("FROM base\nARG HOME=/arg\nARG EXTRA=e\nRUN true\n")[-1]
    assert isinstance(run, Exec)
    assert run.env == ("PATH=/opt/bin:/bin", "HOME=/home/app", "EXTRA=e")
    assert run.build_args == ("HOME=/home/app", "EXTRA=e")
    (label,) = ops("FROM base\nARG HOME=/arg\nLABEL home=$HOME\n")[1:]
    assert label.config == (ConfigChange("Labels", {"home": "/home/app"}),)


def test_env_values_are_expanded_with_the_env_before_the_instruction() -> None:
    first, second = ops('FROM scratch\nENV A=1\nENV A=2 B=$A C="x y"\n')
    assert first.created_by == "ENV A=1"
    assert second.created_by == "ENV A=2 B=1 C=x y"
    assert second.config == (ConfigChange("Env", [f"PATH={_default_path()}", "A=2", "B=1", "C=x y"]),)


def _default_path() -> str:
    return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def test_run_mounts_are_expanded_and_typed() -> None:
    run = ops(
        "FROM base AS b\n"
        "ARG DIR=/cache\n"
        "RUN --mount=type=cache,target=$DIR,id=pip,sharing=locked,mode=0700,uid=1 "
        "--mount=type=bind,from=other,source=/src,target=rel,rw "
        "--mount=type=secret,id=token --mount=type=secret,id=key,env=KEY,required "
        "--mount=type=ssh --mount=type=tmpfs,target=/t,size=64m --mount=target=/ctx "
        "--network=none --security=insecure true\n"
    )[-1]
    assert isinstance(run, Exec)
    assert run.mounts == (
        CacheMount(target="/cache", id="pip", sharing="locked", mode=0o700, uid=1),
        BindMount(target="/srv/rel", source=ImageSource("other"), source_path="/src", readwrite=True),
        SecretMount(id="token", target="/run/secrets/token"),
        SecretMount(id="key", env="KEY", required=True),
        SshMount(target="/run/buildkit/ssh_agent.4"),
        TmpfsMount(target="/t", size=64 * 1024 * 1024),
        BindMount(target="/ctx", source=ContextSource()),
    )
    assert (run.network, run.security) == ("none", "insecure")


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--mount=type=cache", "mount target is required for a cache mount"),
        ("--mount=type=cache,target=/c,sharing=all", 'unsupported sharing value "all"'),
        ("--mount=type=bind,target=/c,sharing=locked", "invalid cache sharing set for bind mount"),
        ("--mount=type=secret", "one of source, target required"),
        ("--mount=ro=maybe,target=/x", "invalid value for readonly: maybe"),
        ("--network=bridge", 'unsupported network mode "bridge"'),
    ],
)
def test_run_flag_errors(flag: str, message: str) -> None:
    with pytest.raises(DockerfileError) as caught:
        graph(f"FROM base\nRUN {flag} true\n")
    assert caught.value.message == message
    assert caught.value.span is not None and caught.value.span.start_line == 2


def test_run_heredoc_without_shebang_gives_the_body_to_the_shell() -> None:
    run = only("FROM base\nRUN <<-EOF\n\techo a\n\techo b\nEOF\n")
    assert isinstance(run, Exec)
    assert run.argv == ("/bin/sh", "-c", "echo a\necho b\n")
    assert run.inline_files == ()


def test_run_heredoc_with_shebang_runs_an_inline_file() -> None:
    run = only("FROM base\nRUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\n")
    assert isinstance(run, Exec)
    assert run.argv == ("/bin/sh", "-c", "/dev/pipes/EOF")
    assert run.inline_files == (InlineFile("EOF", "#!/usr/bin/env python3\nprint(1)\n", 0o755),)


def test_run_heredoc_in_a_pipeline_is_rebuilt_as_a_script() -> None:
    run = only("FROM base\nRUN <<'EOF' python3\nprint(1)\nEOF\n")
    assert isinstance(run, Exec)
    assert run.argv == ("/bin/sh", "-c", "<<'EOF' python3\nprint(1)\nEOF")


def test_copy_destination_sources_and_flags() -> None:
    result = ops(
        "FROM base\nENV OWNER=1:2\nCOPY --chown=$OWNER --chmod=640 --link --exclude=*.md a $HOME/b ./\n"
    )
    copy = result[-1]
    assert copy == CopyOp(
        location=copy.location,
        created_by="COPY a /home/app/b ./ # buildkit",
        source=ContextSource(),
        paths=("a", "/home/app/b"),
        dest="/srv/",
        chown="1:2",
        chmod="640",
        link=True,
        exclude=("*.md",),
    )


@pytest.mark.parametrize(
    ("dest", "resolved"),
    [
        ("x", "/srv/x"),
        ("x/", "/srv/x/"),
        (".", "/srv/"),
        ("/abs", "/abs"),
        ("../up/", "/up/"),
        ("/a/.", "/a/"),
    ],
)
def test_copy_destination_is_joined_with_the_workdir(dest: str, resolved: str) -> None:
    copy = only(f"FROM base\nCOPY f {dest}\n")
    assert isinstance(copy, CopyOp) and copy.dest == resolved


def test_copy_from_stage_image_and_named_context() -> None:
    text = (
        "FROM base AS one\nFROM scratch\n"
        "COPY --from=one /a /\nCOPY --from=alpine /b /\nCOPY --from=ctx /c /\n"
    )
    result = graph(text, build_contexts={"ctx": "/some/dir"})
    sources = [op.source for op in result.stages[-1].ops if isinstance(op, CopyOp)]
    assert sources == [StageSource(0), ImageSource("alpine"), ContextSource("ctx")]
    assert result.stages[-1].reads == frozenset({0})


def test_copy_heredoc_is_expanded_unless_quoted() -> None:
    first, second = ops("FROM base\nCOPY <<EOF /a\n$HOME \"q\"\nEOF\nCOPY <<'EOF' /b\n$HOME\nEOF\n")
    assert isinstance(first, CopyOp) and isinstance(second, CopyOp)
    assert first.source == InlineSource((InlineFile("EOF", '/home/app "q"\n'),))
    assert first.paths == ("EOF",)
    assert first.created_by == "COPY <<EOF /a # buildkit"
    assert second.source == InlineSource((InlineFile("EOF", "$HOME\n"),))


def test_copy_url_is_refused_and_add_url_fetches() -> None:
    with pytest.raises(DockerfileError) as caught:
        graph("FROM base\nCOPY https://example.com/f /\n")
    assert caught.value.message == "source can't be a URL for COPY"
    add = only("FROM base\nADD --checksum=sha256:abc https://example.com/f /f\n")
    assert isinstance(add, CopyOp)
    assert add.source == UrlSource("https://example.com/f", "sha256:abc")
    assert add.unpack is False
    git = only("FROM base\nADD --keep-git-dir https://example.com/r.git#v1:sub /r\n")
    assert isinstance(git, CopyOp) and git.source == GitSource("https://example.com/r.git", "v1", "sub", True)
    local = only("FROM base\nADD a.tar /\n")
    assert isinstance(local, CopyOp) and local.unpack is True


def test_add_unpack_flag_overrides_the_default_rule() -> None:
    kept = only("FROM base\nADD --unpack=false a.tar /\n")
    assert isinstance(kept, CopyOp) and kept.unpack is False
    fetched = only("FROM base\nADD --unpack https://example.com/a.tar /\n")
    assert isinstance(fetched, CopyOp) and fetched.unpack is True


def test_a_bad_onbuild_trigger_points_at_the_from_line() -> None:
    with pytest.raises(DockerfileError) as caught:
        graph("FROM base AS x\nFROM parent\n", {"base": {}, "parent": {"OnBuild": ["FOO bar"]}})
    assert caught.value.message.startswith("ONBUILD trigger 'FOO bar' of the base: unknown instruction: FOO")
    assert caught.value.span is not None and caught.value.span.start_line == 2


def test_invalid_chmod() -> None:
    with pytest.raises(DockerfileError) as caught:
        graph("FROM base\nCOPY --chmod=999 a /\n")
    assert (
        caught.value.message
        == "invalid chmod parameter: '999'. it should be octal string and between 0 and 07777"
    )


def test_config_instructions_history_and_changes() -> None:
    result = ops(
        "FROM base\n"
        "MAINTAINER me <me@example.com>\n"
        "LABEL a=1 b=$HOME\n"
        "EXPOSE 80 53/udp\n"
        "VOLUME /data $HOME\n"
        "USER 1000:1000\n"
        "STOPSIGNAL SIGKILL\n"
        'CMD echo "hi"\n'
        "HEALTHCHECK --interval=5m --retries=3 CMD curl -f http://localhost/\n"
        "ONBUILD RUN echo child\n"
    )
    assert [op.created_by for op in result] == [
        "MAINTAINER me <me@example.com>",
        "LABEL a=1 b=/home/app",
        "EXPOSE map[53/udp:{} 80/tcp:{}]",
        "VOLUME [/data /home/app]",
        "USER 1000:1000",
        "STOPSIGNAL SIGKILL",
        'CMD ["/bin/sh" "-c" "echo \\"hi\\""]',
        'HEALTHCHECK &{["CMD-SHELL" "curl -f http://localhost/"] "5m0s" "0s" "0s" "0s" \'\\x03\'}',
        "ONBUILD RUN echo child",
    ]
    assert [op.config for op in result] == [
        (),
        (ConfigChange("Labels", {"a": "1", "b": "/home/app"}),),
        (ConfigChange("ExposedPorts", {"80/tcp": {}, "53/udp": {}}),),
        (ConfigChange("Volumes", {"/data": {}, "/home/app": {}}),),
        (ConfigChange("User", "1000:1000"),),
        (ConfigChange("StopSignal", "SIGKILL"),),
        (ConfigChange("Cmd", ["/bin/sh", "-c", 'echo "hi"']),),
        (
            ConfigChange(
                "Healthcheck",
                {
                    "Test": ["CMD-SHELL", "curl -f http://localhost/"],
                    "Interval": 300_000_000_000,
                    "Retries": 3,
                },
            ),
        ),
        (ConfigChange("OnBuild", ["RUN echo child"]),),
    ]
    assert isinstance(result[-1], ConfigOp) and result[-1].in_history is False


def test_entrypoint_resets_an_inherited_cmd_but_not_one_set_here() -> None:
    (entrypoint,) = ops('FROM base\nENTRYPOINT ["run"]\n')
    assert entrypoint.config == (ConfigChange("Entrypoint", ["run"]), ConfigChange("Cmd", None))
    _, kept = ops('FROM base\nCMD ["x"]\nENTRYPOINT run me\n')
    assert kept.config == (ConfigChange("Entrypoint", ["/bin/sh", "-c", "run me"]),)


def test_onbuild_triggers_of_the_base_run_first_and_are_cleared() -> None:
    configs = {"parent": {"Env": ["PATH=/bin"], "OnBuild": ["ENV FROM_PARENT=1", "RUN echo $FROM_PARENT"]}}
    stage = graph("FROM parent\nRUN echo mine\n", configs).stages[0]
    start, env, trigger_run, mine = stage.ops
    assert start == ConfigOp(stage.location, "", (ConfigChange("OnBuild", None),), in_history=False)
    assert env.created_by == "ENV FROM_PARENT=1" and env.location == stage.location
    assert isinstance(trigger_run, Exec) and trigger_run.argv == ("/bin/sh", "-c", "echo $FROM_PARENT")
    assert isinstance(mine, Exec) and mine.env == ("PATH=/bin", "FROM_PARENT=1")


def test_stage_base_starts_from_the_earlier_stages_config() -> None:
    result = graph("FROM base AS one\nENV A=1\nWORKDIR /w\nFROM one\nRUN true\n")
    second = result.stages[1]
    assert second.base == StageBase(0)
    assert second.base_config["WorkingDir"] == "/w"
    (run,) = second.ops
    assert isinstance(run, Exec) and run.cwd == "/w" and run.env[-1] == "A=1"


def test_resolver_is_asked_for_image_bases_only() -> None:
    resolver = FakeResolver({})
    build_graph(parse("FROM a AS x\nFROM scratch\nFROM x\n"), resolver=resolver, target="x")
    assert resolver.asked == ["a"]


def test_kiln_debug_graph_prints_the_graph(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from builder.cli.main import main

    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM busybox AS a\nARG X\nRUN echo $X\nFROM scratch\n")
    status = main(["debug", "graph", "-f", str(dockerfile), "--target", "A", "--build-arg", "X=1"])
    printed = json.loads(capsys.readouterr().out)
    assert status == 0
    assert printed["kind"] == "BuildGraph" and printed["target"] == 0
    (stage,) = printed["stages"]
    assert stage["ops"][-1]["created_by"] == "RUN |1 X=1 /bin/sh -c echo $X # buildkit"


# ---------------------------------------------------------------------------------------
# The differential corpus: every case's final config and history, from the graph alone.

DIFFERENTIAL = ("conformance", "differential")
CORPUS_BASES = {"busybox": {"Cmd": ["sh"]}, "debian": {"Cmd": ["bash"]}}


class CorpusResolver:
    """The corpus's two imported bases: no Env, only a Cmd."""

    def resolve(self, ref: str, platform: Platform) -> ResolvedImage:
        config = CORPUS_BASES["debian" if ref.startswith("debian") else "busybox"]
        return ResolvedImage(ref, "sha256:" + "0" * 64, platform, dict(config))


def _final(result: BuildGraph, index: int) -> tuple[dict[str, object], list[str]]:
    """Replay the graph's config changes: the image config and history the target gets."""
    stage = result.stage(index)
    if isinstance(stage.base, StageBase):
        config, history = _final(result, stage.base.stage)
    else:
        config = dict(stage.base_config)
        history = [] if isinstance(stage.base, ScratchBase) else [""]
    for op in stage.ops:
        for change in op.config:
            if change.value is None:
                config.pop(change.field, None)
            else:
                config[change.field] = change.value
        if not isinstance(op, ConfigOp) or op.in_history:
            history.append(op.created_by)
    return config, history


def _cases() -> list[str]:
    cases = SHARED_DIR.joinpath(*DIFFERENTIAL, "cases")
    return sorted(path.name for path in cases.iterdir()) if cases.is_dir() else []


@pytest.mark.parametrize("name", _cases())
def test_differential_case_config_and_history(name: str) -> None:
    case_dir: Path = require_shared(*DIFFERENTIAL, "cases", name)
    case = json.loads((case_dir / "case.json").read_text(encoding="utf-8"))
    expected = json.loads((case_dir / "expected.json").read_text(encoding="utf-8"))
    dockerfile = parse((case_dir / "context" / case["dockerfile"]).read_bytes(), case["dockerfile"])
    options = {"build_args": case.get("build_args") or {}, "target": case.get("target")}
    if case["expect"] == "failure" and "failed to process" in expected.get("error", ""):
        with pytest.raises(DockerfileError):
            build_graph(dockerfile, resolver=CorpusResolver(), **options)
        return
    result = build_graph(dockerfile, resolver=CorpusResolver(), **options)
    if case["expect"] == "failure":
        return  # fails while building (a missing source), not while converting
    config, history = _final(result, result.target)
    assert config == expected["config"]
    assert history == [entry["created_by"] for entry in expected["history"]]


def test_a_stage_built_from_another_keeps_its_args_in_scope() -> None:
    text = 'FROM base AS lower\nARG quoted="a b"\nFROM lower\nRUN echo $quoted\nCOPY $quoted /x\n'
    run, copy = ops(text)
    assert isinstance(run, Exec) and "quoted=a b" in run.env
    assert run.build_args == ()
    assert run.created_by == "RUN /bin/sh -c echo $quoted # buildkit"
    assert isinstance(copy, CopyOp) and copy.paths == ("a b",)


def test_a_stage_built_from_an_image_starts_without_earlier_stage_args() -> None:
    (run,) = ops("FROM base AS lower\nARG quoted=x\nFROM base\nRUN echo $quoted\n")
    assert isinstance(run, Exec) and not any(entry.startswith("quoted=") for entry in run.env)


@pytest.mark.parametrize(
    "signal",
    [
        "SIGTERM",
        "TERM",
        "sigterm",
        "SigKill",
        "SIGRTMIN",
        "SIGRTMIN+3",
        "rtmax-14",
        "RTMAX",
        "CLD",
        "9",
        "+15",
        "-1",
    ],
)
def test_stopsignal_accepts_a_signal_name_or_number_as_written(signal: str) -> None:
    op = only(f"FROM base\nSTOPSIGNAL {signal}\n")
    assert op.created_by == f"STOPSIGNAL {signal}"
    assert op.config == (ConfigChange("StopSignal", signal),)


@pytest.mark.parametrize(
    ("dockerfile", "options", "signal"),
    [
        ("FROM base\nARG SIG=SIGUSR1\nSTOPSIGNAL $SIG\n", {}, "SIGUSR1"),
        ("FROM base\nARG SIG=SIGUSR1\nSTOPSIGNAL ${SIG}\n", {"build_args": {"SIG": "37"}}, "37"),
        ("FROM base\nENV SIG=QUIT\nSTOPSIGNAL SIG$SIG\n", {}, "SIGQUIT"),
    ],
)
def test_stopsignal_is_checked_after_expansion(dockerfile: str, options: dict[str, Any], signal: str) -> None:
    op = ops(dockerfile, **options)[-1]
    assert op.created_by == f"STOPSIGNAL {signal}"
    assert op.config == (ConfigChange("StopSignal", signal),)


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("FOO", "invalid signal: FOO"),
        ("0", "invalid signal: 0"),
        ("-0", "invalid signal: -0"),
        ("SIG", "invalid signal: SIG"),
        ("SIGSIGTERM", "invalid signal: SIGSIGTERM"),
        ("SIGRTMIN+16", "invalid signal: SIGRTMIN+16"),
        ("RTMAX-15", "invalid signal: RTMAX-15"),
        ("1.5", "invalid signal: 1.5"),
        ("0x9", "invalid signal: 0x9"),
        ("9223372036854775808", "invalid signal: 9223372036854775808"),
        ("$UNSET", "invalid signal: "),
        ("$NAME", "invalid signal: nope"),
    ],
)
def test_stopsignal_rejects_what_names_no_signal_on_its_line(written: str, message: str) -> None:
    with pytest.raises(DockerfileError) as caught:
        graph(f"FROM base\nARG NAME=nope\nSTOPSIGNAL {written}\n")
    assert caught.value.message == message
    assert caught.value.span is not None and caught.value.span.start_line == 3
