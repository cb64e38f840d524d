"""Differential conformance: build every case of the shared corpus with kiln and compare the
image with what BuildKit built (``../shared/conformance/differential``).

Per the corpus README: the two bases are made by its ``make-bases.sh`` (cached between runs
under ``KILN_TEST_BASES``, default ``/var/cache/kiln-tests/bases``) and imported into a
fresh store; each case's context is materialised by ``prepare_context.py``; the image is
saved as a docker archive, described by ``imagetree.py`` and checked by ``compare.py`` with
``--allow-version-sensitive`` (kiln follows current BuildKit where the old oracle kept mount
stubs) and ``--ignore-volatile`` (rebuilt bases). Cases kiln does not pass yet are listed,
each with its reason, in ``differential_xfail.json`` beside this file.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from builder.cli.main import main as kiln_main
from tests.conftest import IN_CI, SHARED_DIR, require_root, require_shared

CORPUS = SHARED_DIR / "conformance" / "differential"
XFAIL_FILE = Path(__file__).with_name("differential_xfail.json")
BASES_DIR = Path(os.environ.get("KILN_TEST_BASES", "/var/cache/kiln-tests/bases"))
BASE_IMAGES = (
    ("busybox-rootfs.tar", "busybox:latest", "sh"),
    ("debian-rootfs.tar.gz", "debian:bookworm-slim", "bash"),
)


def _case_names() -> list[str]:
    cases = CORPUS / "cases"
    return sorted(entry.name for entry in cases.iterdir()) if cases.is_dir() else []


def _xfails() -> dict[str, str]:
    if not XFAIL_FILE.exists():
        return {}
    listed: dict[str, str] = json.loads(XFAIL_FILE.read_text(encoding="utf-8"))
    return listed


def _flattened_symlinks(case_dir: Path) -> list[str]:
    """Context files that stand for symlinks the checkout could not keep.

    A checkout made without symlink support writes each link as a small file holding its
    target. Such a file's content equals the target of a link in the expected tree, and the
    image kiln builds from it can only hold that text there; those cases cannot pass as
    checked out, whatever the builder does.
    """
    expected = json.loads((case_dir / "expected.json").read_text(encoding="utf-8"))
    targets = {entry[5] for entry in expected.get("tree", []) if entry[1] == "l"}
    flattened: list[str] = []
    for path in sorted((case_dir / "context").rglob("*")):
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 255:
            continue
        if path.read_bytes().decode("utf-8", "replace") in targets:
            flattened.append(str(path.relative_to(case_dir / "context")))
    return flattened


def _load_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ensure_bases() -> Path:
    """The corpus's base tarballs, made once per machine by the corpus's own script."""
    if all((BASES_DIR / name).exists() for name, _, _ in BASE_IMAGES):
        return BASES_DIR
    BASES_DIR.parent.mkdir(parents=True, exist_ok=True)
    scratch = BASES_DIR.with_name(BASES_DIR.name + f".tmp-{os.getpid()}")
    subprocess.run(["sh", str(CORPUS / "make-bases.sh"), str(scratch)], check=True, capture_output=True)
    try:
        os.rename(scratch, BASES_DIR)
    except OSError:
        if not BASES_DIR.exists():
            raise
    return BASES_DIR


@pytest.fixture(scope="module")
def corpus_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    require_shared("conformance", "differential", "cases")
    require_root("the differential corpus builds real images (overlayfs, containers)")
    try:
        bases = _ensure_bases()
    except (OSError, subprocess.CalledProcessError) as err:
        message = f"cannot make the corpus base images: {err}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    root = tmp_path_factory.mktemp("differential-store")
    for tarball, name, shell in BASE_IMAGES:
        status = kiln_main(
            ["--root", str(root), "import", "--change", f'CMD ["{shell}"]', str(bases / tarball), name]
        )
        assert status == 0, f"importing {tarball} failed"
    yield root


def _describe(root: Path, image: str, scratch: Path) -> dict[str, object]:
    archive = scratch / "image.tar"
    assert kiln_main(["--root", str(root), "save", "-o", str(archive), image]) == 0
    described = subprocess.run(
        [sys.executable, str(SHARED_DIR / "conformance" / "imagetree.py"), str(archive)],
        check=True,
        capture_output=True,
    )
    result: dict[str, object] = json.loads(described.stdout)
    return result


@pytest.mark.parametrize("base", ["busybox", "debian"])
def test_imported_bases_match_the_corpus(corpus_store: Path, base: str, tmp_path: Path) -> None:
    image = "busybox:latest" if base == "busybox" else "debian:bookworm-slim"
    actual = _describe(corpus_store, image, tmp_path)
    expected = json.loads((CORPUS / "bases" / f"{base}.json").read_text(encoding="utf-8"))
    volatile_paths = json.loads((CORPUS / "bases" / "volatile.json").read_text(encoding="utf-8"))["paths"]
    volatile = set(volatile_paths.get(image, []))
    assert actual["config"] == expected["config"]
    expected_tree = {entry[0]: entry[1:] for entry in expected["tree"]}
    actual_tree = {entry[0]: entry[1:] for entry in actual["tree"]}  # type: ignore[union-attr]
    differing = [
        path
        for path in set(expected_tree) | set(actual_tree)
        if expected_tree.get(path) != actual_tree.get(path)
        and not (
            path in volatile and (expected_tree.get(path) or [])[:4] == (actual_tree.get(path) or [])[:4]
        )
    ]
    assert sorted(differing) == []


@pytest.mark.parametrize("case_name", _case_names())
def test_case(case_name: str, corpus_store: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    reason = _xfails().get(case_name)
    if reason:
        pytest.xfail(reason)
    case_dir = CORPUS / "cases" / case_name
    case = json.loads((case_dir / "case.json").read_text(encoding="utf-8"))
    flattened = _flattened_symlinks(case_dir)
    if flattened:
        pytest.xfail(f"the shared checkout holds symlinks as plain files: {', '.join(flattened[:3])}")
    prepare = _load_module(CORPUS / "prepare_context.py")
    context = tmp_path / "ctx"
    prepare.prepare(str(case_dir), str(context))
    tag = f"diffcase-{case_name}"
    argv = [
        "--root",
        str(corpus_store),
        "build",
        "--no-cache",
        "-f",
        str(context / case["dockerfile"]),
        "-t",
        tag,
    ]
    for key, value in (case.get("build_args") or {}).items():
        argv += ["--build-arg", f"{key}={value}"]
    if case.get("target"):
        argv += ["--target", case["target"]]
    argv.append(str(context))
    status = kiln_main(argv)
    output = capfd.readouterr()
    assert "Traceback" not in output.err, output.err
    if case["expect"] == "failure":
        assert status != 0, "BuildKit refused this build; kiln built it"
        return
    assert status == 0, f"build failed:\n{output.err[-3000:]}"
    actual = _describe(corpus_store, tag, tmp_path)
    compare = _load_module(CORPUS / "compare.py")
    problems = compare.compare(str(case_dir), actual, False, True, True)
    failing = [problem for problem in problems if not problem.startswith("(history, not failing)")]
    assert failing == [], "\n".join(problems)
