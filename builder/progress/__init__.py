"""Renderers of build events: plain lines for CI, JSON lines for machines, a live view."""
