"""Layers: a directory diff written as a compressed tar blob, and a blob unpacked into a root.

Writing and unpacking are each one sequential pass; digests are computed on the way. The
whiteout conventions live in :mod:`builder.layers.whiteouts`.
"""

from typing import TYPE_CHECKING

from builder.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from builder.layers.applier import apply_layer
    from builder.layers.compression import COMPRESSIONS, Compression, detect_compression, open_decompressed
    from builder.layers.writer import LayerDescriptor, WhiteoutFormat, write_layer

__all__ = [
    "COMPRESSIONS",
    "Compression",
    "LayerDescriptor",
    "WhiteoutFormat",
    "apply_layer",
    "detect_compression",
    "open_decompressed",
    "write_layer",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "apply_layer": "applier",
        "COMPRESSIONS": "compression",
        "Compression": "compression",
        "detect_compression": "compression",
        "open_decompressed": "compression",
        "LayerDescriptor": "writer",
        "WhiteoutFormat": "writer",
        "write_layer": "writer",
    },
)
