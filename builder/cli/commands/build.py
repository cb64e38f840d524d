"""``kiln build``: Dockerfile + context → image, with docker's flags.

This is where the Dockerfile frontend meets the builder: the command parses and converts
the Dockerfile (resolving base images against the store), then hands the graph to
:func:`builder.build.run_build` and writes the requested outputs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

from builder.errors import UsageError

if TYPE_CHECKING:
    from builder.cli.outputs import OutputSpec
    from builder.graph import BuildGraph, Platform
    from builder.progress import Renderer
    from builder.store.store import Store
    from cache.prescan import ContextScan


def _pairs(values: Sequence[str], flag: str, *, from_env: bool = False) -> dict[str, str]:
    """``K=V`` values of a repeatable flag; with ``from_env`` a bare ``K`` takes ``$K``."""
    pairs: dict[str, str] = {}
    for value in values:
        key, has_value, text = value.partition("=")
        if not key:
            raise UsageError(f"{flag} {value!r}: expected KEY=VALUE")
        if not has_value:
            if not from_env:
                raise UsageError(f"{flag} {value!r}: expected KEY=VALUE")
            if key not in os.environ:
                continue
            text = os.environ[key]
        pairs[key] = text
    return pairs


def _dockerfile_path(args: argparse.Namespace, context_dir: Path) -> Path:
    if args.file is None:
        return context_dir / "Dockerfile"
    if args.file == "-":
        return Path("-")
    path = Path(args.file)
    return path if path.is_absolute() or path.exists() else context_dir / path


def _read_dockerfile(path: Path) -> bytes:
    if str(path) == "-":
        return sys.stdin.buffer.read()
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"Dockerfile not found: {path}") from None
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err}") from None


def _renderer(args: argparse.Namespace, dockerfile_name: str, dockerfile_text: bytes) -> Renderer:
    """The progress renderer ``--progress`` (or ``-q``) asks for, on stderr.

    It is handed the Dockerfile's text so a failed step can be shown amid its neighbours.
    """
    from builder.progress import make_renderer

    mode = "quiet" if args.quiet else args.progress
    sources = {dockerfile_name: dockerfile_text.decode("utf-8", "surrogateescape")}
    return make_renderer(mode, sys.stderr, sources=sources)


def _allow_insecure(entitlements: Sequence[str]) -> bool:
    """``--allow``: kiln knows one entitlement, ``security.insecure``."""
    for entitlement in entitlements:
        if entitlement != "security.insecure":
            raise UsageError(f"--allow {entitlement!r}: unknown entitlement (known: security.insecure)")
    return bool(entitlements)


#: How long a thread waiting for the GIL lets the running one go on (Python's default is
#: 5 ms). A build's hashing threads spend nearly all their time in OpenSSL and ``pread``,
#: without the GIL, and want it back for a moment every few MB; at 5 ms they waited longer
#: for it than they hashed, while the main thread walked trees (a 300 MB layer was hashed at
#: half speed). 0.5 ms costs the main thread little: those threads ask a few hundred times
#: a second.
GIL_SWITCH_INTERVAL = 0.0005


def run_build_command(args: argparse.Namespace) -> int:
    from builder.cli.entry import take_scan
    from builder.exec.deferred import deferring
    from cache.prescan import ContextScan

    context_dir = Path(args.context)
    if not context_dir.is_dir():
        raise UsageError(f"build context {args.context!r} is not a directory")
    dockerfile_path = _dockerfile_path(args, context_dir)
    # First of all: the context's directories are listed beside the rest of start-up (by
    # a scan the ``kiln`` command started before parsing this command line, if it guessed
    # this context).
    from_stdin = str(dockerfile_path) == "-"
    scan = None if from_stdin else take_scan(context_dir, dockerfile_path)
    if scan is None:
        scan = ContextScan.start(context_dir, None if from_stdin else dockerfile_path)
    previous = sys.getswitchinterval()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    try:
        # The cleanup the build leaves running (its last RUN's unmount) goes on beside
        # storing the image and closing the store.
        with deferring():
            return _run_build_command(args, context_dir, dockerfile_path, scan)
    finally:
        sys.setswitchinterval(previous)
        if scan is not None:
            scan.close()


def _run_build_command(
    args: argparse.Namespace, context_dir: Path, dockerfile_path: Path, scan: ContextScan | None
) -> int:
    # Imported here, not at module level: ``kiln --version`` and ``--help`` load this module.
    from builder.build import BuildRequest, run_build
    from builder.cli.cachespec import CacheCollector, export_caches, import_caches, parse_cache_spec
    from builder.cli.commands.images import open_store
    from builder.cli.outputs import parse_output, write_output
    from builder.context import BuildContext
    from builder.events import Notice
    from builder.exec.runtime import find_runtime
    from builder.named_contexts import resolve_named_contexts
    from builder.runner import RunnerOptions
    from builder.secrets import parse_secret_flag, parse_ssh_flag
    from frontends.dockerfile.convert import build_graph
    from frontends.dockerfile.parser import parse

    dockerfile_text = _read_dockerfile(dockerfile_path)
    dockerfile = parse(dockerfile_text, file=dockerfile_path.name)
    build_args = _pairs(args.build_arg, "--build-arg", from_env=True)
    named = _pairs(args.build_context, "--build-context")
    outputs: list[OutputSpec] = [parse_output(text) for text in args.output]
    cache_from = [parse_cache_spec(text, "--cache-from") for text in args.cache_from]
    cache_to = [parse_cache_spec(text, "--cache-to") for text in args.cache_to]
    collected = CacheCollector()
    from builder.cli.platform_builds import parse_platform_list

    platforms = parse_platform_list(args.platform)  # several: one image each, under an index
    platform = platforms[0] if platforms else None
    renderer = _renderer(args, dockerfile_path.name, dockerfile_text)
    collector = None
    sink: Renderer = renderer
    if args.metadata_file:
        # Only --metadata-file needs the collector and its build model (~5 ms of imports).
        from builder.progress import MetadataCollector, Tee

        collector = MetadataCollector()
        sink = Tee(renderer, collector)
    # closing(): the live view stops and prints its summary (or the failure) however the
    # build ends, and the terminal gets its cursor back.
    with open_store(args) as store, closing(sink):
        from builder.registry import PullingResolver

        resolver = PullingResolver(store, always_check=args.pull, sink=sink, insecure=args.insecure_registry)
        named = resolve_named_contexts(store, named)
        graph = build_graph(
            dockerfile,
            resolver=resolver,
            target=args.target,
            build_args=build_args,
            platform=platform,
            build_contexts=named,
        )
        for warning in graph.warnings:
            sink(Notice(warning))
        context = BuildContext.open(
            context_dir.resolve(), None if str(dockerfile_path) == "-" else dockerfile_path
        )
        named_contexts = {
            name: BuildContext.open(Path(value).resolve(), None)
            for name, value in named.items()
            if "://" not in value
        }
        epoch_text = build_args.get("SOURCE_DATE_EPOCH") or os.environ.get("SOURCE_DATE_EPOCH")
        options = RunnerOptions(
            # The store keeps layers uncompressed; --compression applies where they leave it.
            compression="none",
            source_date_epoch=int(epoch_text) if epoch_text else None,
            runtime=find_runtime(args.runtime) if args.runtime else None,
            named_contexts=named_contexts,
            secrets={source.id: source for source in map(parse_secret_flag, args.secret)},
            ssh_sockets=dict(map(parse_ssh_flag, args.ssh)),
            allow_insecure=_allow_insecure(args.allow),
            resolver=resolver,
            no_cache=args.no_cache,
            no_cache_stages=frozenset(args.no_cache_filter),
            dockerfile=str(dockerfile_path.absolute()),
            explain=collected.explain if args.explain else None,
            on_record=collected.record,
            context_scan=scan,
        )
        labels = _pairs(args.label, "--label")
        import_caches(store, cache_from, args.insecure_registry)

        def after_build(final_chains: frozenset[str]) -> None:
            """Once the layers are built: the --explain report, then the --cache-to exports."""
            if args.explain:
                from builder.cli.cachespec import print_explanations

                print_explanations(collected.explained, sys.stderr)
            export_caches(
                store,
                cache_to,
                collected.records,
                final_chains,
                args.insecure_registry,
                compression=args.compression,
            )

        if len(platforms) > 1:
            from builder.cli.platform_builds import build_for_platforms

            def graph_for(target_platform: Platform) -> BuildGraph:
                return build_graph(
                    dockerfile,
                    resolver=resolver,
                    target=args.target,
                    build_args=build_args,
                    platform=target_platform,
                    build_contexts=named,
                )

            status = build_for_platforms(
                store,
                args,
                platforms,
                graph_for,
                context=context,
                labels=labels,
                options=options,
                sink=sink,
                outputs=outputs,
                after_build=after_build,
            )
            _write_out_splices(store)
            return status
        request = BuildRequest(graph, context, tuple(args.tag), labels, options)
        result = run_build(store, request, sink)
        after_build(frozenset(layer.chain_id for layer in result.state.layers))
        # What each push left in its registry: with layers compressed on the way out, not
        # the stored manifest's digest.
        pushed: dict[str, str] = {}
        for output in outputs:
            digest = write_output(
                store,
                result.manifest_digest,
                output,
                insecure=args.insecure_registry,
                compression=args.compression,
            )
            if digest is not None:
                pushed[output.name] = digest
        if args.push:
            if not args.tag:
                raise UsageError("--push needs a name: add -t REGISTRY/REPOSITORY[:TAG]")
            from builder.registry import push_image

            for tag in args.tag:
                pushed[tag] = push_image(
                    store, tag, sink=sink, insecure=args.insecure_registry, compression=args.compression
                )
        _write_out_splices(store)
    if collector is not None:
        extra: dict[str, object] = {"manifest_digest": result.manifest_digest}
        if pushed:
            extra["pushed"] = pushed
        collector.write(Path(args.metadata_file), extra)
    if args.iidfile:
        Path(args.iidfile).write_text(result.image_id, encoding="utf-8")
    if args.quiet:
        print(result.image_id)
    return 0


def _write_out_splices(store: Store) -> None:
    """Layers this build kept as splices are written out whole in the background, so the
    store stays an OCI layout outside tools can read (:mod:`builder.store.write_out`)."""
    if store.blobs.spliced:
        from builder.store.write_out import write_out_later

        write_out_later(store)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("build", help="build an image from a Dockerfile")
    parser.add_argument("context", help="the build context directory")
    parser.add_argument("-f", "--file", help="the Dockerfile (default CONTEXT/Dockerfile; - for stdin)")
    parser.add_argument("-t", "--tag", action="append", default=[], help="name the image (repeatable)")
    parser.add_argument("--build-arg", action="append", default=[], metavar="K=V", help="set a build arg")
    parser.add_argument(
        "--build-context",
        action="append",
        default=[],
        metavar="NAME=DIR|docker-image://REF|oci-layout://PATH[:TAG]",
        help="a named context for FROM NAME and --from=NAME",
    )
    parser.add_argument(
        "--secret", action="append", default=[], metavar="id=ID,src=FILE|env=VAR", help="a build secret"
    )
    parser.add_argument(
        "--ssh", action="append", default=[], metavar="default|ID[=SOCKET]", help="forward an SSH agent"
    )
    parser.add_argument(
        "--allow", action="append", default=[], metavar="security.insecure", help="grant an entitlement"
    )
    parser.add_argument("--target", help="build only up to this stage")
    parser.add_argument(
        "--platform", help="target platform, os/arch[/variant]; a comma-separated list builds each"
    )
    parser.add_argument("--label", action="append", default=[], metavar="K=V", help="add an image label")
    parser.add_argument(
        "-o",
        "--output",
        action="append",
        default=[],
        metavar="type=TYPE,dest=PATH",
        help="also write the image: type=oci|docker|tar (dest=FILE), type=local (dest=DIR) "
        "or type=registry (name=REF: push it)",
    )
    parser.add_argument("--iidfile", help="write the image id to this file")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the image id")
    parser.add_argument(
        "--progress",
        default="auto",
        choices=("auto", "tty", "plain", "json", "quiet"),
        help="how to show progress: a live view on a terminal, plain lines in CI (auto picks), or JSON lines",
    )
    parser.add_argument("--metadata-file", help="write a JSON report of the build (image, steps) here")
    parser.add_argument("--no-cache", action="store_true", help="do not use the layer cache")
    parser.add_argument(
        "--no-cache-filter",
        action="append",
        default=[],
        metavar="STAGE",
        help="do not use the layer cache for this stage (name or index; repeatable)",
    )
    parser.add_argument(
        "--cache-from",
        action="append",
        default=[],
        metavar="type=local,src=DIR|type=registry,ref=REF",
        help="import cache records before building (repeatable)",
    )
    parser.add_argument(
        "--cache-to",
        action="append",
        default=[],
        metavar="type=local,dest=DIR[,mode=min|max]|type=registry,ref=REF",
        help="export this build's cache records (repeatable)",
    )
    parser.add_argument(
        "--explain", action="store_true", help="print every rebuilt step's full reason after the build"
    )
    parser.add_argument("--pull", action="store_true", help="check the registry for newer base images")
    parser.add_argument("--push", action="store_true", help="push every -t name after the build")
    parser.add_argument(
        "--insecure-registry",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="allow plain http to this registry",
    )
    parser.add_argument("--runtime", default="", help="OCI runtime to run steps with (crun or runc)")
    parser.add_argument(
        "--compression",
        default="gzip",
        choices=("gzip", "zstd", "none"),
        help="how layers are compressed where they leave the store: OCI archives, pushes, "
        "cache exports (the store itself keeps built layers uncompressed)",
    )
    parser.set_defaults(handler=run_build_command)
