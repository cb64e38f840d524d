"""File ops without a container: COPY, ADD and WORKDIR written straight into a rootfs.

* :func:`copy_into` applies a :class:`~builder.graph.CopyOp` (COPY/ADD);
* :func:`make_workdir` applies a :class:`~builder.graph.MkdirOp` (WORKDIR);
* :func:`resolve_owner` turns ``--chown`` (or WORKDIR's user) into ids of the destination;
* :func:`parse_chmod` reads ``--chmod`` (octal or symbolic);
* :func:`copy_tree` is ``cp -a`` by the same rules (devices recreated, never read).

Every write resolves inside the destination root (:mod:`builder.rootpath`).
"""

from typing import TYPE_CHECKING

from builder.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from builder.fileops.chmod import ModeChange, parse_chmod
    from builder.fileops.copy import copy_into
    from builder.fileops.mkdir import make_workdir
    from builder.fileops.owner import resolve_owner
    from builder.fileops.writer import copy_tree

__all__ = ["ModeChange", "copy_into", "copy_tree", "make_workdir", "parse_chmod", "resolve_owner"]

__getattr__ = lazy_exports(
    __name__,
    {
        "ModeChange": "chmod",
        "parse_chmod": "chmod",
        "copy_into": "copy",
        "make_workdir": "mkdir",
        "resolve_owner": "owner",
        "copy_tree": "writer",
    },
)
