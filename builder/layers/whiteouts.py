"""The two spellings of "this path was deleted": overlayfs's and the OCI layer format's.

overlayfs marks a deleted path in an upper dir with a 0/0 character device of the same name,
and a directory whose lower contents are hidden with the ``trusted.overlay.opaque=y`` xattr
(``user.overlay.opaque`` on a ``userxattr`` mount). A layer tar says the same with empty
files: ``.wh.<name>`` and ``<dir>/.wh..wh..opq`` (OCI image-spec, "Whiteouts").
"""

from __future__ import annotations

import errno
import os
import stat

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
#: aufs kept its own bookkeeping under this prefix; such entries are skipped, as Docker does.
AUFS_META_PREFIX = ".wh..wh."
TRUSTED_OPAQUE_XATTR = "trusted.overlay.opaque"
USER_OPAQUE_XATTR = "user.overlay.opaque"
_OVERLAY_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")


def is_overlay_private_xattr(name: str) -> bool:
    """overlayfs's own xattrs: never copied into a layer nor taken from one.

    A tar carrying ``trusted.overlay.redirect`` or ``.opaque`` could otherwise change what
    an overlay mount shows from the lower layers.
    """
    return name.startswith(_OVERLAY_XATTR_PREFIXES)


def is_overlay_whiteout(status: os.stat_result) -> bool:
    return stat.S_ISCHR(status.st_mode) and status.st_rdev == 0


def is_opaque_dir(path: str | bytes) -> bool:
    """Whether an upper-dir directory carries an overlay opaque xattr set to ``y``."""
    for name in (TRUSTED_OPAQUE_XATTR, USER_OPAQUE_XATTR):
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError as err:
            if err.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EPERM):
                raise
    return False
