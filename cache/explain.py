"""Why a step was not cached, in words: the first input that differs from last time.

A miss is compared with the closest previous record of the same step (the record last
saved for it, :func:`cache.records.previous_for_step`). The checks run from the outside in
— ``--no-cache``, platform, instruction kind, what it runs on, its own fields, its
inputs — and the first difference found is the answer, so a rebuilt parent shows as
"previous step was rebuilt" and the step that changed names its own reason.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

NO_CACHE = "--no-cache"
FIRST_BUILD = "no previous build of this step"
LAYER_GONE = "the cached layer is no longer in the store"

#: At most this many file names are listed in one explanation.
MAX_FILES_NAMED = 3

_FIELD_WORDS = {
    "argv": "command",
    "cwd": "working directory",
    "user": "user",
    "network": "network mode",
    "security": "security mode",
    "mounts": "mounts",
    "inline_files": "heredoc content",
    "shell_form": "command form",
    "paths": "source paths",
    "dest": "destination",
    "chown": "--chown",
    "chmod": "--chmod",
    "link": "--link",
    "parents": "--parents",
    "exclude": "--exclude",
    "unpack": "unpacking",
    "source": "source",
    "path": "directory",
    "mode": "mode",
}


def explain_miss(
    preimage: Mapping[str, object],
    previous: Mapping[str, object] | None,
    *,
    file_changes: Mapping[str, Sequence[tuple[str, str]]] | None = None,
    no_cache: bool = False,
) -> str:
    """One sentence saying why ``preimage``'s key had no usable record.

    ``file_changes`` gives each input's changed files (:func:`changed_files` of the
    per-file digests before and now, :class:`cache.filechanges.FileChanges`); without them
    a changed input is named, not its file.
    """
    if no_cache:
        return NO_CACHE
    if previous is None:
        return FIRST_BUILD
    if preimage == previous:
        return LAYER_GONE
    if preimage.get("version") != previous.get("version"):
        return "the cache format changed"
    if preimage.get("platform") != previous.get("platform"):
        return f"platform changed from {previous.get('platform')} to {preimage.get('platform')}"
    if preimage.get("kind") != previous.get("kind"):
        return "instruction changed"
    if preimage.get("parent") != previous.get("parent"):
        return _parent_change(str(previous.get("parent", "")), str(preimage.get("parent", "")))
    op, previous_op = _mapping(preimage.get("op")), _mapping(previous.get("op"))
    if op != previous_op:
        return _op_change(previous_op, op)
    return _input_change(
        _mapping(previous.get("inputs")),
        _mapping(preimage.get("inputs")),
        file_changes or {},
    )


def explain_all(
    preimage: Mapping[str, object],
    previous: Mapping[str, object] | None,
    *,
    file_changes: Mapping[str, Sequence[tuple[str, str]]] | None = None,
    no_cache: bool = False,
) -> list[str]:
    """Every difference, one line each, in the order :func:`explain_miss` checks them:
    what ``kiln build --explain`` prints for a step (every changed file and variable)."""
    if no_cache or previous is None or preimage == previous:
        return [explain_miss(preimage, previous, no_cache=no_cache)]
    lines: list[str] = []
    for field_name in ("version", "platform", "kind", "parent"):
        if preimage.get(field_name) != previous.get(field_name):
            lines.append(explain_miss({**previous, field_name: preimage.get(field_name)}, previous))
    op, previous_op = _mapping(preimage.get("op")), _mapping(previous.get("op"))
    arg_names = _names(op.get("build_args")) | _names(previous_op.get("build_args"))
    lines += _variable_changes(previous_op.get("env"), op.get("env"), arg_names)
    for name in sorted((set(op) | set(previous_op)) - {"env", "build_args"}):
        if op.get(name) != previous_op.get(name):
            lines.append(f"instruction changed ({_FIELD_WORDS.get(name, name)})")
    old_inputs, new_inputs = _mapping(previous.get("inputs")), _mapping(preimage.get("inputs"))
    found = file_changes or {}
    for name in sorted(set(old_inputs) | set(new_inputs)):
        if old_inputs.get(name) == new_inputs.get(name):
            continue
        changes = found.get(name)
        if changes:
            lines += [f"file {path} {how}" for path, how in changes]
        else:
            lines.append(_input_change({name: old_inputs.get(name)}, {name: new_inputs.get(name)}, {}))
    return lines


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _parent_change(old: str, new: str) -> str:
    if old.startswith("image@") and new.startswith("image@"):
        return f"base image digest changed from {_short(old[6:])} to {_short(new[6:])}"
    if old.startswith("image@") or new.startswith("image@") or old == "scratch" or new == "scratch":
        return "base image changed"
    if new.startswith("stage@"):
        return "the stage it is based on changed"
    return "previous step was rebuilt"


def _short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


def _op_change(old: Mapping[str, object], new: Mapping[str, object]) -> str:
    if old.get("env") != new.get("env") or old.get("build_args") != new.get("build_args"):
        arg_names = _names(new.get("build_args")) | _names(old.get("build_args"))
        change = _first_variable_change(old.get("env"), new.get("env"), arg_names)
        if change is None:
            change = _first_variable_change(old.get("build_args"), new.get("build_args"), arg_names)
        if change is not None:
            return change
    for name in sorted(set(old) | set(new)):
        if old.get(name) != new.get(name):
            return f"instruction changed ({_FIELD_WORDS.get(name, name)})"
    return "instruction changed"


def _pairs(value: object) -> dict[str, str]:
    """``K=V`` entries as a dict; the last entry for a name wins, as in an environment."""
    pairs: dict[str, str] = {}
    if isinstance(value, list):
        for entry in value:
            name, _, text = str(entry).partition("=")
            pairs[name] = text
    return pairs


def _names(value: object) -> set[str]:
    return set(_pairs(value))


def _first_variable_change(old_value: object, new_value: object, arg_names: set[str]) -> str | None:
    return next(iter(_variable_changes(old_value, new_value, arg_names)), None)


def _variable_changes(old_value: object, new_value: object, arg_names: set[str]) -> list[str]:
    """Each added, removed or changed ``K=V`` variable, by name."""
    old, new = _pairs(old_value), _pairs(new_value)
    changes: list[str] = []
    for name in sorted(set(old) | set(new)):
        what = "build arg" if name in arg_names else "env"
        if name not in old:
            changes.append(f"{what} {name} added ({name}={new[name]})")
        elif name not in new:
            changes.append(f"{what} {name} removed (was {old[name]})")
        elif old[name] != new[name]:
            changes.append(f"{what} {name} changed from {old[name]} to {new[name]}")
    return changes


def _input_change(
    old: Mapping[str, object],
    new: Mapping[str, object],
    file_changes: Mapping[str, Sequence[tuple[str, str]]],
) -> str:
    for name in sorted(set(old) | set(new)):
        if old.get(name) == new.get(name):
            continue
        changes = list(file_changes.get(name, ()))
        if changes:
            return _describe_files(changes)
        if name.startswith("mount:"):
            return f"content mounted at {name.removeprefix('mount:')} changed"
        return "source content changed"
    return LAYER_GONE


def changed_files(old: Mapping[str, str], new: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    """``(path, "changed" | "added" | "removed")`` for each difference, in path order.

    Only the differences are sorted: a one-file change to 20,000 files sorts one path."""
    differences = {path: "removed" for path in old.keys() - new.keys()}
    for path, digest in new.items():
        known = old.get(path)
        if known is None:
            differences[path] = "added"
        elif known != digest:
            differences[path] = "changed"
    for path in sorted(differences):
        yield path, differences[path]


def _describe_files(changes: list[tuple[str, str]]) -> str:
    named = [f"file {path} {how}" for path, how in changes[:MAX_FILES_NAMED]]
    text = ", ".join(named)
    if len(changes) > MAX_FILES_NAMED:
        text += f" and {len(changes) - MAX_FILES_NAMED} more"
    return text
