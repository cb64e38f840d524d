"""``kiln build --platform a,b,...``: the command-line half of a multi-platform build.

``kiln build`` parses its flags and the Dockerfile as for one platform; with several
platforms it hands over here: one graph per platform from the same frontend call, one
build (:func:`builder.multiplatform.run_multiplatform_build`), then the same outputs,
``--push``, ``--iidfile`` and ``-q`` as a single-platform build, all naming the index.
``-o type=local`` and ``type=tar`` hold one subdirectory per platform, as BuildKit writes
them (its ``platform-split=false``, which merges the platforms into one tree, is not offered).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from builder.cli.outputs import OutputSpec, write_output, write_platform_split_output
from builder.errors import UsageError
from builder.graph import Platform
from builder.registry.platforms import normalise, parse_platform
from builder.store.snapshots import chain_ids

if TYPE_CHECKING:
    # Types only: every ``kiln build`` loads this module for parse_platform_list, and the
    # multi-platform builder is needed only when several platforms are asked for.
    from builder.context import BuildContext
    from builder.events import EventSink
    from builder.graph import BuildGraph
    from builder.multiplatform import MultiPlatformResult
    from builder.runner import RunnerOptions
    from builder.store.store import Store


def parse_platform_list(text: str | None) -> list[Platform]:
    """``linux/amd64,linux/arm64``: each platform once, in the order given."""
    if not text:
        return []
    platforms: list[Platform] = []
    for item in text.split(","):
        if not item.strip():
            raise UsageError(f"--platform {text!r}: empty platform in the list")
        platform = parse_platform(item)
        if normalise(platform) in {normalise(known) for known in platforms}:
            continue
        platforms.append(platform)
    return platforms


def build_for_platforms(
    store: Store,
    args: argparse.Namespace,
    platforms: Sequence[Platform],
    make_graph: Callable[[Platform], BuildGraph],
    *,
    context: BuildContext | None,
    labels: Mapping[str, str],
    options: RunnerOptions,
    sink: EventSink,
    outputs: Sequence[OutputSpec],
    after_build: Callable[[frozenset[str]], None] | None = None,
) -> int:
    """Build every platform, name the index ``-t``, write outputs and push; print the index
    digest with ``-q`` (and write it to ``--iidfile``), as buildx does for a manifest list.

    ``after_build`` (``--cache-to``, ``--explain``) gets the layer chain ids of every
    platform's image before any output is written.
    """
    from builder.multiplatform import MultiPlatformRequest, run_multiplatform_build

    if any(output.type in ("local", "tar") for output in outputs):
        _check_split_names(platforms)
    # The Dockerfile's warnings are the same for every platform: the caller printed them.
    graphs = {platform: make_graph(platform) for platform in platforms}
    request = MultiPlatformRequest(graphs, context, tuple(args.tag), labels, options)
    result = run_multiplatform_build(store, request, sink)
    if after_build is not None:
        after_build(_final_chain_ids(store, result))
    for output in outputs:
        if output.type in ("local", "tar"):
            split = [(platform_directory(image.platform), image.manifest_digest) for image in result.images]
            write_platform_split_output(store, split, output)
            continue
        write_output(
            store, result.index_digest, output, insecure=args.insecure_registry, compression=args.compression
        )
    if args.push:
        if not args.tag:
            raise UsageError("--push needs a name: add -t REGISTRY/REPOSITORY[:TAG]")
        from builder.registry import push_image

        for tag in args.tag:
            push_image(store, tag, sink=sink, insecure=args.insecure_registry, compression=args.compression)
    if args.iidfile:
        Path(args.iidfile).write_text(result.index_digest, encoding="utf-8")
    if args.quiet:
        print(result.index_digest)
    return 0


def _check_split_names(platforms: Sequence[Platform]) -> None:
    """Before building: two platforms that are one to containerd (``linux/arm64`` and
    ``linux/arm64/v8``) would share one directory of a split export."""
    seen: dict[str, Platform] = {}
    for platform in platforms:
        name = platform_directory(platform)
        if name in seen:
            raise UsageError(f"--platform: {seen[name]} and {platform} are the same platform ({name})")
        seen[name] = platform


def platform_directory(platform: Platform) -> str:
    """The subdirectory a platform's filesystem gets in a split export: BuildKit's name for
    it, ``os_arch[_variant]`` of the platform normalised as containerd does (``linux_arm64``
    for arm64 and arm64/v8, ``linux_arm_v7`` for plain arm)."""
    variant = platform.variant
    if platform.architecture == "arm64" and variant in ("8", "v8"):
        variant = ""
    elif platform.architecture == "arm" and variant in ("", "7"):
        variant = "v7"
    elif platform.architecture == "arm" and variant.isdigit():
        variant = f"v{variant}"
    elif platform.architecture == "amd64" and variant == "v1":
        variant = ""
    return "_".join(part for part in (platform.os, platform.architecture, variant) if part)


def _final_chain_ids(store: Store, result: MultiPlatformResult) -> frozenset[str]:
    """The snapshot chain ids of every platform image's layers."""
    found: set[str] = set()
    for image in result.images:
        manifest, config = store.get_image(image.manifest_digest)
        found.update(chain_ids([layer.diff_id for layer in store.layers(manifest, config)]))
    return frozenset(found)
