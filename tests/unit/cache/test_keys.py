from __future__ import annotations

import dataclasses

import pytest

from builder.graph import (
    BindMount,
    CacheMount,
    ConfigChange,
    ConfigOp,
    ContextSource,
    CopyOp,
    Exec,
    MkdirOp,
    Platform,
    SecretMount,
    StageSource,
)
from builder.source import SourceSpan
from cache.canonical import canonical_digest
from cache.keys import (
    KEY_VERSION,
    SCRATCH,
    SOURCE_INPUT,
    InputNeed,
    image_parent,
    mount_input,
    op_key,
    required_inputs,
    stage_parent,
)

AMD64 = Platform("linux", "amd64")
PARENT = image_parent("sha256:" + "a" * 64)


def span(line: int) -> SourceSpan:
    return SourceSpan("Dockerfile", line, line, 1, "RUN make")


def run(line: int = 3, **changes: object) -> Exec:
    op = Exec(
        location=span(line),
        created_by="RUN /bin/sh -c make # buildkit",
        argv=("/bin/sh", "-c", "make"),
        env=("PATH=/usr/bin:/bin", "VERSION=1"),
        cwd="/src",
        build_args=("VERSION=1",),
    )
    return dataclasses.replace(op, **changes)  # type: ignore[arg-type]


def copy(**changes: object) -> CopyOp:
    op = CopyOp(span(4), "COPY app /app # buildkit", ContextSource(), ("app",), "/app")
    return dataclasses.replace(op, **changes)  # type: ignore[arg-type]


def key_of(op: Exec | CopyOp | MkdirOp, parent: str = PARENT, **inputs: str) -> str:
    return op_key(op, parent=parent, platform=AMD64, inputs=inputs).digest


def test_same_op_twice_gives_the_same_key() -> None:
    assert key_of(run()) == key_of(run())


def test_digest_is_the_canonical_digest_of_the_preimage() -> None:
    key = op_key(run(), parent=PARENT, platform=AMD64, inputs={})
    assert key.digest == canonical_digest(key.preimage)
    assert key.preimage == {
        "version": KEY_VERSION,
        "kind": "Exec",
        "parent": PARENT,
        "platform": "linux/amd64",
        "inputs": {},
        "op": {
            "argv": ["/bin/sh", "-c", "make"],
            "env": ["PATH=/usr/bin:/bin", "VERSION=1"],
            "cwd": "/src",
            "user": "",
            "network": "default",
            "security": "sandbox",
            "mounts": [],
            "inline_files": [],
            "shell_form": True,
            "build_args": ["VERSION=1"],
        },
    }


def test_moving_an_instruction_to_another_line_keeps_the_key() -> None:
    assert key_of(run(line=3)) == key_of(run(line=30))


def test_created_by_and_config_changes_do_not_change_the_key() -> None:
    workdir = MkdirOp(span(2), "WORKDIR /src", "/src", config=(ConfigChange("WorkingDir", "/src"),))
    relabelled = dataclasses.replace(workdir, created_by="other", config=())
    assert key_of(workdir) == key_of(relabelled)


@pytest.mark.parametrize(
    "changed",
    [
        run(env=("PATH=/usr/bin:/bin", "VERSION=2"), build_args=("VERSION=2",)),
        run(argv=("/bin/sh", "-c", "make install")),
        run(cwd="/"),
        run(user="nobody"),
        run(network="none"),
    ],
)
def test_a_changed_field_changes_the_key(changed: Exec) -> None:
    assert key_of(changed) != key_of(run())


def test_parent_platform_and_inputs_are_keyed() -> None:
    base = key_of(copy(), **{SOURCE_INPUT: "sha256:1"})
    assert key_of(copy(), **{SOURCE_INPUT: "sha256:2"}) != base
    assert key_of(copy(), SCRATCH, **{SOURCE_INPUT: "sha256:1"}) != base
    arm = op_key(
        copy(), parent=PARENT, platform=Platform("linux", "arm64"), inputs={SOURCE_INPUT: "sha256:1"}
    )
    assert arm.digest != base


def test_secret_mount_contributes_its_declaration_only() -> None:
    secret = SecretMount(id="npmrc", target="/root/.npmrc", uid=1000, mode=0o440)
    key = op_key(run(mounts=(secret,)), parent=PARENT, platform=AMD64, inputs={})
    assert key.preimage["op"]["mounts"] == [  # type: ignore[index]
        {"kind": "SecretMount", "id": "npmrc", "target": "/root/.npmrc", "env": "", "required": False}
    ]


def test_secret_content_never_enters_the_key(tmp_path: object) -> None:
    # The key is computed from the op alone: two builds with different secret values
    # (never passed to op_key) and the same declaration share it.
    secret = SecretMount(id="token", env="TOKEN")
    assert key_of(run(mounts=(secret,))) == key_of(run(mounts=(secret,)))
    assert key_of(run(mounts=(secret,))) != key_of(run())


def test_cache_mount_keeps_options_not_content() -> None:
    mount = CacheMount(target="/root/.cache", id="pip", sharing="locked")
    key = op_key(run(mounts=(mount,)), parent=PARENT, platform=AMD64, inputs={})
    assert key.preimage["op"]["mounts"] == [  # type: ignore[index]
        {
            "kind": "CacheMount",
            "target": "/root/.cache",
            "id": "pip",
            "sharing": "locked",
            "source": None,
            "source_path": "",
            "mode": 0o755,
            "uid": 0,
            "gid": 0,
            "readonly": False,
        }
    ]


def test_stage_index_is_not_keyed_its_content_is() -> None:
    first = copy(source=StageSource(1))
    moved = copy(source=StageSource(2))
    assert key_of(first, **{SOURCE_INPUT: "sha256:k"}) == key_of(moved, **{SOURCE_INPUT: "sha256:k"})


def test_required_inputs() -> None:
    bind = BindMount(target="/src", source=ContextSource(), source_path="app")
    assert required_inputs(copy(exclude=("*.md",))) == (
        InputNeed(SOURCE_INPUT, ContextSource(), ("app",), ("*.md",)),
    )
    assert required_inputs(run(mounts=(bind,))) == (
        InputNeed(mount_input("/src"), ContextSource(), source_path="app"),
    )
    assert required_inputs(run()) == ()


def test_parent_helpers() -> None:
    assert image_parent("sha256:ab") == "image@sha256:ab"
    assert stage_parent("sha256:cd") == "stage@sha256:cd"


def test_config_op_has_no_key() -> None:
    with pytest.raises(ValueError, match="no layer"):
        op_key(ConfigOp(span(1), "ENV A=1"), parent=PARENT, platform=AMD64, inputs={})
