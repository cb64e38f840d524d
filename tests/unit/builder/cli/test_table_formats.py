"""``kiln images``, ``kiln history`` and ``kiln ps`` in their three shapes.

Off a terminal the plain columns must stay byte for byte what they were (scripts cut them),
so those tests pin the ages to a fixed word and compare whole outputs. The JSON tests check
that each row keeps the raw values (RFC 3339 times, sizes in bytes) under docker's keys.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from builder.cli.commands import containers as container_commands
from builder.cli.commands import images as image_commands
from builder.cli.commands._humanize import human_size, table
from builder.cli.main import main
from builder.containers import RunOverrides, create_container
from builder.store.store import Store


def _rootfs(path: Path) -> Path:
    with tarfile.open(path, "w") as archive:
        info = tarfile.TarInfo("marker")
        info.size = 1
        archive.addfile(info, io.BytesIO(b"a"))
    return path


@pytest.fixture
def root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A store holding ``app:1`` (one layer, history comment ``first``) and one created container."""
    store_root = tmp_path / "store"
    command = 'CMD ["sh", "-c", "echo hello from a long command"]'
    tar = str(_rootfs(tmp_path / "a.tar"))
    assert main(["--root", str(store_root), "import", "-c", command, "-m", "first", tar, "app:1"]) == 0
    with Store.open(store_root) as store:
        create_container(store, "app:1", RunOverrides(), name="web")
    capsys.readouterr()
    return store_root


@pytest.fixture
def fixed_ages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ages worded the same whenever the test runs, so whole outputs can be compared."""
    monkeypatch.setattr(image_commands, "human_age", lambda created: "2 hours ago")
    monkeypatch.setattr(container_commands, "human_age", lambda created: "2 hours ago")


def _out(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["--root", str(root), *args]) == 0
    return capsys.readouterr().out


def _json_lines(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in _out(root, capsys, *args, "--format", "json").splitlines()]


def _image(root: Path) -> tuple[str, dict[str, Any]]:
    with Store.open(root) as store:
        manifest, config = store.get_image("app:1")
    return str(manifest["config"]["digest"]), config


def test_images_json_keeps_time_and_bytes(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image_id, config = _image(root)
    [row] = _json_lines(root, capsys, "images")
    assert set(row) == {"Repository", "Tag", "ID", "CreatedAt", "Size"}
    assert (row["Repository"], row["Tag"], row["ID"]) == ("app", "1", image_id[7:19])
    assert row["CreatedAt"] == config["created"]
    assert isinstance(row["Size"], int) and row["Size"] > 0
    [full] = _json_lines(root, capsys, "images", "--no-trunc")
    assert full["ID"] == image_id


def test_images_plain_columns(root: Path, capsys: pytest.CaptureFixture[str], fixed_ages: None) -> None:
    image_id, _config = _image(root)
    [size] = [str(row["Size"]) for row in _json_lines(root, capsys, "images")]
    out = _out(root, capsys, "images")
    short = image_id[7:19]
    assert out.splitlines()[0] == "REPOSITORY   TAG   IMAGE ID       CREATED       SIZE"
    assert out.splitlines()[1].startswith(f"app          1     {short}   2 hours ago   ")
    expected = [["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], ["app", "1", short, "2 hours ago"]]
    expected[1].append(human_size(int(size)))
    assert out == table(expected) + "\n"


def test_history_json_and_plain_columns(
    root: Path, capsys: pytest.CaptureFixture[str], fixed_ages: None
) -> None:
    image_id, config = _image(root)
    [row] = _json_lines(root, capsys, "history", "app:1")
    [entry] = config["history"]
    assert row == {
        "ID": image_id[7:19],
        "CreatedAt": entry["created"],
        "CreatedBy": "kiln import",
        "Size": row["Size"],
        "Comment": "first",
    }
    assert isinstance(row["Size"], int)
    size = human_size(row["Size"])
    assert _out(root, capsys, "history", "app:1") == (
        f"IMAGE          CREATED       CREATED BY    {'SIZE'.ljust(len(size))}   COMMENT\n"
        f"{image_id[7:19]}   2 hours ago   kiln import   {size.ljust(4)}   first\n"
    )


def test_ps_json_and_plain_columns(root: Path, capsys: pytest.CaptureFixture[str], fixed_ages: None) -> None:
    [row] = _json_lines(root, capsys, "ps", "-a")
    container_id = str(row["ID"])
    assert len(container_id) == 12
    assert {key: value for key, value in row.items() if key not in ("ID", "CreatedAt")} == {
        "Image": "app:1",
        "Command": '"sh -c echo hello fr…"',
        "Status": "Created",
        "Names": "web",
    }
    assert str(row["CreatedAt"]).endswith("Z")
    [full] = _json_lines(root, capsys, "ps", "-a", "--no-trunc")
    assert str(full["ID"]).startswith(container_id) and len(str(full["ID"])) == 64
    assert full["Command"] == '"sh -c echo hello from a long command"'
    assert _out(root, capsys, "ps", "-a") == (
        "CONTAINER ID   IMAGE   COMMAND                  CREATED       STATUS    NAMES\n"
        f'{container_id}   app:1   "sh -c echo hello fr…"   2 hours ago   Created   web\n'
    )
    # Nothing running: the heading alone, and no JSON line at all.
    assert _out(root, capsys, "ps") == "CONTAINER ID   IMAGE   COMMAND   CREATED   STATUS   NAMES\n"
    assert _out(root, capsys, "ps", "--format", "json") == ""


def test_quiet_wins_over_json(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image_id, _config = _image(root)
    assert _out(root, capsys, "images", "-q", "--format", "json") == image_id[7:19] + "\n"
    assert len(_out(root, capsys, "ps", "-a", "-q", "--format", "json").strip()) == 12


def test_a_terminal_gets_the_rich_table(
    root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    plain = _out(root, capsys, "images")
    terminal = Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    assert main(["--root", str(root), "images"]) == 0
    shown = terminal.getvalue()
    assert shown != plain
    assert "REPOSITORY" in shown and "app" in shown and "\x1b[" in shown


def test_unknown_format_is_a_usage_error(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--root", str(root), "history", "app:1", "--format", "yaml"]) == 2
    assert "invalid choice: 'yaml'" in capsys.readouterr().err
