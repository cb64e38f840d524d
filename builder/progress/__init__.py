"""Renderers of build events: plain lines for CI, JSON lines for machines, a live view.

The CLI calls :func:`make_renderer` with the ``--progress`` mode, sends every build event to
the renderer it returns, and calls its ``close()`` when the build ends (the live view then
prints its summary). :class:`MetadataCollector` is a sink too; :class:`Tee` feeds both.
"""

from builder.progress.metadata import MetadataCollector
from builder.progress.select import PROGRESS_MODES, Renderer, Tee, make_renderer

__all__ = ["PROGRESS_MODES", "MetadataCollector", "Renderer", "Tee", "make_renderer"]
