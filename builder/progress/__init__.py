"""Renderers of build events: plain lines for CI, JSON lines for machines, a live view.

The CLI calls :func:`make_renderer` with the ``--progress`` mode, sends every build event to
the renderer it returns, and calls its ``close()`` when the build ends (the live view then
prints its summary). :class:`MetadataCollector` is a sink too; :class:`Tee` feeds both.
"""

from typing import TYPE_CHECKING

from builder.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from builder.progress.metadata import MetadataCollector
    from builder.progress.select import PROGRESS_MODES, Renderer, Tee, make_renderer

__all__ = ["PROGRESS_MODES", "MetadataCollector", "Renderer", "Tee", "make_renderer"]

__getattr__ = lazy_exports(
    __name__,
    {
        "MetadataCollector": "metadata",
        "PROGRESS_MODES": "select",
        "Renderer": "select",
        "Tee": "select",
        "make_renderer": "select",
    },
)
