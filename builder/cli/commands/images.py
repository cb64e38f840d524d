"""Image commands: ``import``, ``images``, ``inspect``, ``history``, ``tag``, ``rmi``, ``prune``.

Each is one small function that opens the store named by the global ``--root`` (or
``KILN_ROOT``), does one thing, prints docker's output shape and returns an exit status.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from builder.cli.commands._humanize import human_age, human_size
from builder.errors import KilnError, StoreError, UsageError
from builder.oci.reference import parse_reference
from builder.progress.units import short_digest

if TYPE_CHECKING:
    from builder.store.store import Store


def open_store(args: argparse.Namespace) -> Store:
    """The store the global ``--root`` names, else the default one."""
    from builder.store.store import Store

    root = getattr(args, "root", None)
    return Store.open(Path(root) if root else None)


def add_format_option(parser: argparse.ArgumentParser) -> None:
    """``--format table|json``, worded once for every listing (``images``, ``history``, ``ps``)."""
    parser.add_argument(
        "--format",
        choices=("table", "json"),
        default="table",
        help="table (default: a table on a terminal, plain columns otherwise) or json (one object a line)",
    )


def run_import(args: argparse.Namespace) -> int:
    from builder.export.rootfs_import import import_rootfs
    from builder.platform_index import add_platform_image
    from builder.registry.platforms import parse_platform

    with open_store(args) as store:
        options: dict[str, Any] = {"changes": args.change, "message": args.message, "source": args.file}
        platform = parse_platform(args.platform) if args.platform else None
        # With --platform the name keeps its images of other platforms (it becomes an index).
        name = None if platform is not None else args.reference
        if args.file == "-":
            digest = import_rootfs(store, sys.stdin.buffer, name, platform=platform, **options)
        else:
            source = Path(args.file)
            if not source.is_file():
                raise KilnError(f"cannot read {args.file}: no such file")
            with source.open("rb") as stream:
                digest = import_rootfs(store, stream, name, platform=platform, **options)
        if platform is not None and args.reference:
            add_platform_image(store, args.reference, digest, platform)
        print(store.manifest(digest)["config"]["digest"])
    return 0


def run_images(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        summaries = store.images()
        if args.quiet:
            seen: list[str] = []
            for summary in summaries:
                shown = summary.config_digest if args.no_trunc else short_digest(summary.config_digest)
                if shown not in seen:
                    seen.append(shown)
            if seen:
                print("\n".join(seen))
            return 0
        from builder.progress.tables import Column, render_table

        # JSON keeps what a script would recompute (the RFC 3339 time, the size in bytes);
        # the table shows docker's wording of them.
        as_json = args.format == "json"
        columns = [
            Column("REPOSITORY", key="Repository"),
            Column("TAG", key="Tag"),
            Column("IMAGE ID", key="ID"),
            Column("CREATED", key="CreatedAt"),
            Column("SIZE", key="Size"),
        ]
        rows: list[list[object]] = []
        for summary in summaries:
            reference = summary.reference
            rows.append(
                [
                    reference.familiar_name() if reference else "<none>",
                    (reference.tag or "<none>") if reference else "<none>",
                    summary.config_digest if args.no_trunc else short_digest(summary.config_digest),
                    summary.created if as_json else human_age(summary.created),
                    summary.size if as_json else human_size(summary.size),
                ]
            )
        render_table(columns, rows, stream=sys.stdout, format=args.format)
    return 0


def inspect_document(store: Store, ref: str) -> dict[str, Any]:
    """One image in the shape of ``docker image inspect``."""
    manifest_digest = store.resolve(ref)
    if store.index_entries(manifest_digest) is not None:
        return _index_inspect(store, ref, manifest_digest)
    manifest = store.manifest(manifest_digest)
    config = json.loads(store.blobs.read_bytes(manifest["config"]["digest"]))
    records = store.meta.refs_to(manifest_digest)
    references = [parse_reference(record.name) for record in records]
    history = config.get("history") or []
    document: dict[str, Any] = {
        "Id": manifest["config"]["digest"],
        "RepoTags": [reference.familiar() for reference in references],
        "RepoDigests": sorted({f"{reference.familiar_name()}@{manifest_digest}" for reference in references}),
        "Parent": "",
        "Comment": str(history[-1].get("comment", "")) if history else "",
        "Created": config.get("created", ""),
        "DockerVersion": "",
        "Author": config.get("author", ""),
        "Config": config.get("config", {}),
        "Architecture": config.get("architecture", ""),
        "Os": config.get("os", ""),
        "Size": sum(int(layer.get("size", 0)) for layer in manifest.get("layers", [])),
        "RootFS": {"Type": "layers", "Layers": list(config.get("rootfs", {}).get("diff_ids", []))},
        "Metadata": {"ManifestDigest": manifest_digest},
    }
    if config.get("variant"):
        document["Variant"] = config["variant"]
    return document


def _index_inspect(store: Store, ref: str, index_digest: str) -> dict[str, Any]:
    """A multi-platform name: the index, and every platform's image as for one image."""
    from builder.platform_index import index_document, platform_images

    references = [parse_reference(record.name) for record in store.meta.refs_to(index_digest)]
    return {
        "Id": index_digest,
        "RepoTags": [reference.familiar() for reference in references],
        "RepoDigests": sorted({f"{reference.familiar_name()}@{index_digest}" for reference in references}),
        "MediaType": "application/vnd.oci.image.index.v1+json",
        "Platforms": [str(platform) for _, platform in platform_images(store, index_digest)],
        "Manifests": index_document(store, index_digest, lambda digest: inspect_document(store, digest)),
    }


def run_inspect(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        documents = [inspect_document(store, ref) for ref in args.images]
    print(json.dumps(documents, indent=4))
    return 0


def run_history(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        manifest, config = store.get_image(args.image)
        layer_sizes = [int(layer.get("size", 0)) for layer in manifest.get("layers", [])]
        image_id = manifest["config"]["digest"]
        from builder.progress.tables import Column, render_table

        as_json = args.format == "json"
        columns = [
            Column("IMAGE", key="ID"),
            Column("CREATED", key="CreatedAt"),
            Column("CREATED BY", key="CreatedBy"),
            Column("SIZE", key="Size"),
            Column("COMMENT", key="Comment"),
        ]
        entries = list(config.get("history") or [])
        layer_index = 0
        lines: list[list[object]] = []
        for entry in entries:
            size = 0
            if not entry.get("empty_layer") and layer_index < len(layer_sizes):
                size = layer_sizes[layer_index]
                layer_index += 1
            created = str(entry.get("created", ""))
            created_by = str(entry.get("created_by", ""))
            if not args.no_trunc and len(created_by) > 45:
                created_by = created_by[:44] + "…"
            lines.append(
                [
                    "<missing>",
                    created if as_json else human_age(created),
                    created_by,
                    size if as_json else human_size(size),
                    str(entry.get("comment", "")),
                ]
            )
        if lines:
            lines[-1][0] = image_id if args.no_trunc else short_digest(image_id)
        render_table(columns, list(reversed(lines)), stream=sys.stdout, format=args.format)
    return 0


def run_tag(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        store.tag(args.source, args.target)
    return 0


def run_rmi(args: argparse.Namespace) -> int:
    status = 0
    with open_store(args) as store:
        for ref in args.images:
            try:
                _remove_one(store, ref, force=args.force)
            except StoreError as err:
                print(f"error: {err}", file=sys.stderr)
                status = 1
    return status


def _remove_one(store: Store, ref: str, *, force: bool) -> None:
    """A name is untagged (the image goes with its last name); an id removes the image."""
    from builder.containers.lifecycle import check_image_removable

    if not force:
        check_image_removable(store, ref)
    if _is_name(store, ref):
        record = store.untag(ref)
        print(f"Untagged: {ref}")
        if record is not None and store.meta.image(record.digest) is None:
            print(f"Deleted: {record.digest}")
        return
    digest = store.resolve(ref)
    if len(store.meta.refs_to(digest)) > 1 and not force:
        raise StoreError(f"unable to delete {ref} (must be forced): image is referenced in multiple names")
    for removed in store.remove_image(digest):
        print(f"Untagged: {parse_reference(removed.name).familiar()}")
    print(f"Deleted: {digest}")


def _is_name(store: Store, ref: str) -> bool:
    try:
        return store.meta.ref(str(parse_reference(ref))) is not None
    except UsageError:
        return False


def _prune_cache_mounts(args: argparse.Namespace) -> int:
    from builder.mounts import prune_cache_mounts

    with open_store(args) as store:
        removed, freed = prune_cache_mounts(store.root, dry_run=args.dry_run)
    for name in removed:
        print(f"{'would delete' if args.dry_run else 'deleted'} cache mount: {name}")
    space = "Reclaimable space" if args.dry_run else "Total reclaimed space"
    print(f"{space}: {human_size(freed)}")
    return 0


def run_prune(args: argparse.Namespace) -> int:
    filters = list(getattr(args, "filter", None) or [])
    if "type=cache-mount" in filters:
        return _prune_cache_mounts(args)
    from builder.cli import cacheprune

    unknown = [text for text in filters if not cacheprune.is_cache_filter(text)]
    if unknown:
        known = "type=cache, type=cache-mount, until=DURATION"
        raise UsageError(f"prune --filter {unknown[0]!r}: unknown filter (known: {known})")
    request = cacheprune.cache_prune_request(filters, prune_all=args.all, keep_storage=args.keep_storage)
    from builder.store.gc import prune

    with open_store(args) as store:
        forgotten = cacheprune.prune_cache_records(store, request, dry_run=args.dry_run)
        kept_blobs = cacheprune.cache_blob_roots(store, forgotten)
        report = prune(store, extra_blob_roots=kept_blobs, dry_run=args.dry_run)
    if request.selected:
        done = "would forget" if args.dry_run else "forgot"
        print(f"{done} {len(forgotten.removed)} cache records ({human_size(forgotten.bytes_released)})")
    for digest in report.images:
        print(f"{'would delete' if args.dry_run else 'deleted'} image: {digest}")
    space = "Reclaimable space" if args.dry_run else "Total reclaimed space"
    print(f"{space}: {human_size(report.bytes_freed)}")
    outcome = "to remove" if args.dry_run else "removed"
    print(f"{len(report.blobs)} blobs, {len(report.snapshots)} snapshots {outcome}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("import", help="import a root filesystem tar as an image")
    parser.add_argument("file", help="the tar (plain, gzip or zstd); - for standard input")
    parser.add_argument("reference", nargs="?", default=None, help="NAME[:TAG] to give the image")
    parser.add_argument("-c", "--change", action="append", default=[], help="a config instruction to apply")
    parser.add_argument("-m", "--message", default="", help="the history comment")
    parser.add_argument("--platform", help="os/arch[/variant] the rootfs is for (added to the name's index)")
    parser.set_defaults(handler=run_import)

    parser = subparsers.add_parser("images", help="list images")
    parser.add_argument("-q", "--quiet", action="store_true", help="only image ids")
    parser.add_argument("--no-trunc", action="store_true", help="full image ids")
    add_format_option(parser)
    parser.set_defaults(handler=run_images)

    parser = subparsers.add_parser("inspect", help="show images as JSON (the shape of docker image inspect)")
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.set_defaults(handler=run_inspect)

    parser = subparsers.add_parser("history", help="show the history of an image")
    parser.add_argument("image", metavar="IMAGE")
    parser.add_argument("--no-trunc", action="store_true", help="do not shorten output")
    add_format_option(parser)
    parser.set_defaults(handler=run_history)

    parser = subparsers.add_parser("tag", help="give an image another name")
    parser.add_argument("source", metavar="SOURCE_IMAGE")
    parser.add_argument("target", metavar="TARGET_IMAGE")
    parser.set_defaults(handler=run_tag)

    parser = subparsers.add_parser("rmi", help="remove names and images")
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.add_argument(
        "-f", "--force", action="store_true", help="remove an image with several names or used by a container"
    )
    parser.set_defaults(handler=run_rmi)

    parser = subparsers.add_parser("prune", help="remove unreferenced images, blobs and snapshots")
    parser.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    parser.add_argument("-a", "--all", action="store_true", help="also forget every build cache record")
    parser.add_argument(
        "--keep-storage", metavar="SIZE", help="forget least recently used cache records beyond SIZE"
    )
    parser.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="type=cache|type=cache-mount|until=DURATION",
        help="prune cache records (all, or unused for DURATION) or cache mounts",
    )
    parser.set_defaults(handler=run_prune)
