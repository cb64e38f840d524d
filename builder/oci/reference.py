"""Image references (``busybox``, ``localhost:5000/a/b:t``, ``name@sha256:…``), normalised as docker does.

The grammar follows distribution's ``reference`` package: the first path component is a
registry only when it contains a ``.`` or a ``:`` or is ``localhost``; a name without a
registry lives on ``docker.io``, and a one-component name there gets the ``library/``
prefix; a reference with neither tag nor digest means ``:latest``. The store keys refs by
the full normalised form and shows the familiar one, as ``docker images`` does.
"""

from __future__ import annotations

import re

from builder.errors import UsageError
from builder.lazyclasses import dataclass

DEFAULT_REGISTRY = "docker.io"
DEFAULT_TAG = "latest"
_LEGACY_REGISTRIES = frozenset({"index.docker.io", "registry-1.docker.io"})

_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN = re.compile(
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"
)
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}")
_NAME_TOTAL_MAX = 255


@dataclass(frozen=True)
class Reference:
    """A parsed, normalised image reference; ``tag`` is ``None`` only beside a digest."""

    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        """Registry and repository: ``docker.io/library/busybox``."""
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        """The full normalised form, the key the store records."""
        return self.name + self._suffix()

    def familiar(self) -> str:
        """What docker prints: ``busybox:latest``, ``user/app:1``, ``localhost:5000/a:t``."""
        return self.familiar_name() + self._suffix()

    def familiar_name(self) -> str:
        if self.registry != DEFAULT_REGISTRY:
            return self.name
        return self.repository.removeprefix("library/")

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.registry, self.repository, tag, None)

    def _suffix(self) -> str:
        text = f":{self.tag}" if self.tag is not None else ""
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def parse_reference(text: str) -> Reference:
    """Parse and normalise ``text``; raise :class:`UsageError` naming what is wrong."""
    remainder, digest = _split_digest(text)
    name, tag = _split_tag(remainder)
    registry, repository = _split_registry(name)
    if not repository:
        raise UsageError(f"invalid reference {text!r}: empty repository")
    for component in repository.split("/"):
        if not _COMPONENT.fullmatch(component):
            if component.lower() == component:
                raise UsageError(f"invalid reference {text!r}: bad path component {component!r}")
            raise UsageError(f"invalid reference {text!r}: repository name must be lowercase")
    if len(name) > _NAME_TOTAL_MAX:
        raise UsageError(f"invalid reference {text!r}: name longer than {_NAME_TOTAL_MAX} characters")
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(registry=registry, repository=repository, tag=tag, digest=digest)


def is_digest(text: str) -> bool:
    """Whether ``text`` is a bare digest such as ``sha256:…`` (an image id, not a name)."""
    return _DIGEST.fullmatch(text) is not None


def _split_digest(text: str) -> tuple[str, str | None]:
    if "@" not in text:
        return text, None
    remainder, digest = text.rsplit("@", 1)
    if not _DIGEST.fullmatch(digest):
        raise UsageError(f"invalid reference {text!r}: bad digest {digest!r}")
    return remainder, digest


def _split_tag(text: str) -> tuple[str, str | None]:
    last_slash = text.rfind("/")
    colon = text.rfind(":")
    if colon <= last_slash:
        return text, None
    tag = text[colon + 1 :]
    if not _TAG.fullmatch(tag):
        raise UsageError(f"invalid reference {text!r}: bad tag {tag!r}")
    return text[:colon], tag


def _split_registry(name: str) -> tuple[str, str]:
    first, slash, rest = name.partition("/")
    looks_like_registry = "." in first or ":" in first or first == "localhost"
    if not slash or not looks_like_registry:
        registry, repository = DEFAULT_REGISTRY, name
    else:
        if not _DOMAIN.fullmatch(first):
            raise UsageError(f"invalid reference {name!r}: bad registry {first!r}")
        registry, repository = first, rest
    if registry in _LEGACY_REGISTRIES:
        registry = DEFAULT_REGISTRY
    if registry == DEFAULT_REGISTRY and "/" not in repository:
        repository = f"library/{repository}"
    return registry, repository
