"""Images as data: digests, media types, the OCI/Docker model and its validation.

Nothing here touches the filesystem or the network; the store, the archives and the
registry client read and write these values.
"""

from typing import TYPE_CHECKING

from builder.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from builder.oci.digest import Digest, HashingWriter, is_digest, sha256_digest
    from builder.oci.model import (
        ContainerConfig,
        Descriptor,
        HealthConfig,
        History,
        ImageConfig,
        Index,
        Manifest,
        RootFS,
        parse_manifest_or_index,
    )
    from builder.oci.validate import image_problems, validate_image

__all__ = [
    "ContainerConfig",
    "Descriptor",
    "Digest",
    "HashingWriter",
    "HealthConfig",
    "History",
    "ImageConfig",
    "Index",
    "Manifest",
    "RootFS",
    "image_problems",
    "is_digest",
    "parse_manifest_or_index",
    "sha256_digest",
    "validate_image",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "Digest": "digest",
        "HashingWriter": "digest",
        "is_digest": "digest",
        "sha256_digest": "digest",
        "ContainerConfig": "model",
        "Descriptor": "model",
        "HealthConfig": "model",
        "History": "model",
        "ImageConfig": "model",
        "Index": "model",
        "Manifest": "model",
        "RootFS": "model",
        "parse_manifest_or_index": "model",
        "image_problems": "validate",
        "validate_image": "validate",
    },
)
