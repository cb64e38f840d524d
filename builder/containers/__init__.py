"""Containers: an image's layers plus a writable layer of their own, run, listed, committed.

``kiln run`` creates one (:func:`create_container`) and runs it (:func:`start_container`);
``kiln ps`` lists the records; ``kiln rm`` removes one; ``kiln commit`` turns its writable
layer into a new image (:func:`commit_container`); ``kiln rmi`` asks :func:`image_in_use`.
"""

from typing import TYPE_CHECKING

from builder.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from builder.containers.commit import CommitOptions, commit_container
    from builder.containers.lifecycle import (
        check_image_removable,
        container_dir,
        create_container,
        image_in_use,
        remove_container,
        start_container,
        upper_dir,
    )
    from builder.containers.process import RunOverrides, resolve_process
    from builder.containers.records import ContainerRecord, all_records, find_record

__all__ = [
    "CommitOptions",
    "ContainerRecord",
    "RunOverrides",
    "all_records",
    "check_image_removable",
    "commit_container",
    "container_dir",
    "create_container",
    "find_record",
    "image_in_use",
    "remove_container",
    "resolve_process",
    "start_container",
    "upper_dir",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "CommitOptions": "commit",
        "commit_container": "commit",
        "check_image_removable": "lifecycle",
        "container_dir": "lifecycle",
        "create_container": "lifecycle",
        "image_in_use": "lifecycle",
        "remove_container": "lifecycle",
        "start_container": "lifecycle",
        "upper_dir": "lifecycle",
        "RunOverrides": "process",
        "resolve_process": "process",
        "ContainerRecord": "records",
        "all_records": "records",
        "find_record": "records",
    },
)
