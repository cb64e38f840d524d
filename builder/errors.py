"""One exception hierarchy for all of kiln.

::

    KilnError                      anything kiln reports to a user as a message, never a traceback
    ├── DockerfileError            bad build definition; carries the SourceSpan (file, line, column)
    ├── ContextError               bad build context or .dockerignore pattern
    ├── BuildError                 a step failed while running; carries the step's span and log tail
    ├── StoreError                 the image store is missing something or refused a write
    │   └── LayerError             a layer tar is hostile or malformed (names the entry)
    ├── ImageFormatError           an archive, manifest or config is malformed
    ├── RuntimeSetupError          the machine cannot run containers (no overlayfs, no runtime)
    ├── RegistryError              a registry refused or failed a request
    └── UsageError                 the command line itself is wrong (exit status 2)

The CLI catches ``KilnError``, prints ``str(err)`` and exits 1 (2 for ``UsageError``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Annotations only: every kiln command imports this module, dataclasses need not load.
    from builder.source import SourceSpan


class KilnError(Exception):
    """Root of every error kiln reports as a message."""


class DockerfileError(KilnError):
    """A build definition that cannot be parsed or converted, with where it went wrong."""

    def __init__(self, message: str, span: SourceSpan | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.span = span

    def __str__(self) -> str:
        if self.span is None:
            return self.message
        where = f"{self.span.file}:{self.span.start_line}"
        if self.span.start_column > 1:
            where += f":{self.span.start_column}"
        snippet = self.span.text.splitlines()[0] if self.span.text else ""
        text = f"{where}: {self.message}"
        if snippet:
            text += f"\n  {self.span.start_line:>4} | {snippet}"
        return text


class ContextError(KilnError):
    """The build context or its ignore file is unusable."""


class BuildError(KilnError):
    """A step failed; names the step and shows the end of its output."""

    def __init__(self, message: str, span: SourceSpan | None = None, log_tail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.span = span
        self.log_tail = log_tail

    def __str__(self) -> str:
        text = self.message
        if self.span is not None:
            text = f"{self.span.describe()}: {text}"
            if self.span.text:
                text += "\n" + "\n".join(f"  > {line}" for line in self.span.text.splitlines())
        if self.log_tail:
            text += "\n" + self.log_tail.rstrip("\n")
        return text


class StoreError(KilnError):
    """The store lacks something asked for, or refused a change."""


class LayerError(StoreError):
    """A layer tar is malformed or tries to write outside its root."""


class ImageFormatError(KilnError):
    """An archive, manifest, index or config that kiln cannot read."""


class RuntimeSetupError(KilnError):
    """This machine cannot run a step: no overlayfs, no OCI runtime, not root."""


class RegistryError(KilnError):
    """A registry request failed; names the reference and the reason."""


class UsageError(KilnError):
    """The command line is wrong; the CLI exits 2."""
