"""``--build-context NAME=DIR|docker-image://REF|oci-layout://PATH[:TAG]`` in ``FROM NAME``
and ``--from=NAME``, overriding an image or a stage of that name."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.kiln_cli import kiln

pytestmark = [pytest.mark.root, pytest.mark.slow]


def _build(store: Path, context: Path, out: Path, *flags: str) -> int:
    return kiln(store, "build", *flags, "-o", f"type=local,dest={out}", str(context))


def test_directory_and_image_contexts(
    busybox_store: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert kiln(busybox_store, "tag", "busybox:latest", "toolbox:1") == 0
    extra = tmp_path / "extra"
    (extra / "conf").mkdir(parents=True)
    (extra / "conf" / "app.ini").write_text("[app]\n")
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(
        "FROM scratch AS overridden\n"
        "COPY never.txt /never.txt\n"
        "FROM tools\n"
        "COPY --from=extra conf/app.ini /etc/app.ini\n"
        "COPY --from=overridden /conf/app.ini /via-stage.ini\n"
        "RUN --mount=type=bind,from=extra,target=/x cat /x/conf/app.ini > /via-mount.ini\n"
    )
    out = tmp_path / "out"
    status = _build(
        busybox_store,
        context,
        out,
        "--build-context",
        f"extra={extra}",
        "--build-context",
        "tools=docker-image://toolbox:1",
        "--build-context",
        f"overridden={extra}",
    )
    assert status == 0, capfd.readouterr().err
    assert (out / "bin" / "busybox").is_file()
    assert (out / "etc" / "app.ini").read_text() == "[app]\n"
    assert (out / "via-stage.ini").read_text() == "[app]\n"
    assert (out / "via-mount.ini").read_text() == "[app]\n"


def test_from_a_directory_context(
    busybox_store: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "data").mkdir(parents=True)
    (rootfs / "data" / "x").write_text("x\n")
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM base\n")
    out = tmp_path / "out"
    assert _build(busybox_store, context, out, "--build-context", f"base={rootfs}") == 0, (
        capfd.readouterr().err
    )
    assert (out / "data" / "x").read_text() == "x\n"


def test_oci_layout_context(busybox_store: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    layout = tmp_path / "layout"
    archive = tmp_path / "busybox.tar"
    assert kiln(busybox_store, "save", "--format", "oci", "-o", str(archive), "busybox:latest") == 0
    layout.mkdir()
    import tarfile

    with tarfile.open(archive) as opened:
        opened.extractall(layout, filter="tar")
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM alpine\nRUN echo from-layout > /marker\n")
    out = tmp_path / "out"
    status = _build(busybox_store, context, out, "--build-context", f"alpine=oci-layout://{layout}:latest")
    assert status == 0, capfd.readouterr().err
    assert (out / "marker").read_text() == "from-layout\n"
    assert (out / "bin" / "busybox").is_file()
    capfd.readouterr()
    assert kiln(busybox_store, "images", "-q") == 0
    assert len(capfd.readouterr().out.split()) == 2  # busybox and the built image; no new name


def test_unknown_context_kind(busybox_store: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM busybox\n")
    status = _build(
        busybox_store, context, tmp_path / "out", "--build-context", "x=https://example.invalid/x.tar"
    )
    assert status != 0
    assert "unsupported kind" in capfd.readouterr().err


def test_layout_value_forms() -> None:
    from builder.named_contexts import split_layout_value

    assert split_layout_value("/l") == (Path("/l"), "", "")
    assert split_layout_value("/l:v1") == (Path("/l"), "v1", "")
    assert split_layout_value("/a:b/l") == (Path("/a:b/l"), "", "")
    assert split_layout_value("/l@sha256:ab") == (Path("/l"), "", "sha256:ab")
