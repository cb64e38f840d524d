"""``kiln run``, ``ps``, ``rm``, ``commit`` and ``rmi``'s refusal, through the real CLI.

Each test imports the busybox base into a store of its own and drives ``kiln`` in-process;
output is read from the file descriptors (a container writes to kiln's stdout).
"""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

import pytest

from builder.store import Store
from tests.fixtures.kiln_cli import kiln

pytestmark = [pytest.mark.root, pytest.mark.slow]

PS_HEADER = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES"]


def _ps_rows(output: str) -> list[list[str]]:
    lines = output.strip("\n").splitlines()
    return [re.split(r" {3,}", line.strip()) for line in lines]


def test_run_rm_prints_the_output_and_leaves_nothing(
    busybox_store: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    capfd.readouterr()
    assert kiln(busybox_store, "run", "--rm", "busybox", "echo", "hi") == 0
    assert capfd.readouterr().out == "hi\n"
    assert kiln(busybox_store, "ps", "-a", "-q") == 0
    assert capfd.readouterr().out == ""
    assert list((busybox_store / "containers").iterdir()) == []


def test_run_exits_with_the_container_status_and_follows_the_image_config(
    busybox_store: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    capfd.readouterr()
    status = kiln(
        busybox_store, "run", "--rm", "-e", "GREETING=hey", "-w", "/made/here", "-u", "app", "busybox",
        "sh", "-c", 'echo "$GREETING $(pwd) $(id -u):$(id -g) $HOME"; exit 7',
    )  # fmt: skip
    assert status == 7
    assert capfd.readouterr().out == "hey /made/here 1000:1000 /home/app\n"


def test_round_trip_run_ps_rmi_refusal_commit_rm(
    busybox_store: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    script = "echo hello > /greeting; rm /etc/group; exit 3"
    keeper = ("--name", "keeper", "-e", "X=1", "-w", "/work", "busybox", "sh", "-c", script)
    assert kiln(busybox_store, "run", *keeper) == 3
    capfd.readouterr()

    assert kiln(busybox_store, "ps") == 0
    assert _ps_rows(capfd.readouterr().out) == [PS_HEADER]
    assert kiln(busybox_store, "ps", "-a") == 0
    header, row = _ps_rows(capfd.readouterr().out)
    assert header == PS_HEADER
    assert re.fullmatch(r"[0-9a-f]{12}", row[0])
    assert row[1:3] == ["busybox", '"sh -c echo hello > …"']
    assert row[4].startswith("Exited (3) ") and row[4].endswith(" ago")
    assert row[5] == "keeper"

    # The image is in use: rmi refuses and names the container; the image stays.
    assert kiln(busybox_store, "rmi", "busybox") == 1
    assert capfd.readouterr().err == (
        'error: conflict: unable to remove repository reference "busybox" (must force) - '
        f"container {row[0]} (keeper) is using its referenced image {_image_id(busybox_store, 'busybox')}\n"
    )

    assert (
        kiln(busybox_store, "commit", "-m", "a note", "-a", "A U Thor", "-c", "ENV Y=2", "keeper", "kept:v1")
        == 0
    )
    image_id = capfd.readouterr().out.strip()
    with Store.open(busybox_store) as store:
        manifest, config = store.get_image("kept:v1")
        assert manifest["config"]["digest"] == image_id
        last_layer = store.blobs.read_bytes(manifest["layers"][-1]["digest"])
        # Stored uncompressed, as a built layer is: the blob is the tar (digest == diff id).
        assert manifest["layers"][-1]["mediaType"] == "application/vnd.oci.image.layer.v1.tar"
        assert manifest["layers"][-1]["digest"] == config["rootfs"]["diff_ids"][-1]
    assert config["author"] == "A U Thor"
    assert config["config"] == {
        "Cmd": ["sh", "-c", script],
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "X=1", "Y=2"],
        "WorkingDir": "/work",
    }
    assert len(manifest["layers"]) == 2
    entry = config["history"][-1]
    assert {key: entry[key] for key in ("created_by", "comment", "author")} == {
        "created_by": f"sh -c {script}",
        "comment": "a note",
        "author": "A U Thor",
    }
    with tarfile.open(fileobj=io.BytesIO(last_layer)) as archive:
        names = archive.getnames()
    assert names == ["etc", "etc/.wh.group", "greeting", "work"]

    # The committed image has the change and lacks the deleted file.
    assert kiln(busybox_store, "run", "--rm", "kept:v1", "sh", "-c", "cat /greeting; ls /etc; pwd") == 0
    assert capfd.readouterr().out == "hello\nhosts\npasswd\nresolv.conf\n/work\n"

    assert kiln(busybox_store, "rm", "keeper") == 0
    assert capfd.readouterr().out == "keeper\n"
    assert kiln(busybox_store, "ps", "-a", "-q") == 0
    assert capfd.readouterr().out == ""
    assert list((busybox_store / "containers").iterdir()) == []
    assert kiln(busybox_store, "rmi", "busybox") == 0


def test_forced_rmi_and_prune_keep_what_the_container_needs(
    busybox_store: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert kiln(busybox_store, "run", "--name", "orphan", "busybox", "touch", "/new") == 0
    assert kiln(busybox_store, "rmi", "--force", "busybox") == 0
    assert kiln(busybox_store, "prune") == 0
    capfd.readouterr()
    assert kiln(busybox_store, "commit", "orphan", "rescued") == 0
    assert kiln(busybox_store, "run", "--rm", "rescued", "ls", "/new", "/bin/busybox") == 0
    assert capfd.readouterr().out.splitlines()[-2:] == ["/bin/busybox", "/new"]


def test_names_are_unique(busybox_store: Path, capfd: pytest.CaptureFixture[str]) -> None:
    assert kiln(busybox_store, "run", "--name", "twin", "busybox", "true") == 0
    assert kiln(busybox_store, "run", "--name", "twin", "busybox", "true") == 2
    assert "already in use" in capfd.readouterr().err


def _image_id(store_root: Path, ref: str) -> str:
    with Store.open(store_root) as store:
        manifest, _config = store.get_image(ref)
    return str(manifest["config"]["digest"]).removeprefix("sha256:")[:12]
