"""Random container names, ``adjective_noun`` as docker gives them, unique in the store."""

from __future__ import annotations

import secrets
from collections.abc import Collection

_ADJECTIVES = (
    "brave", "calm", "eager", "fond", "gentle", "happy", "keen", "lucid",
    "merry", "nifty", "proud", "quiet", "sharp", "tender", "vivid", "witty",
)  # fmt: skip
_NOUNS = (
    "anvil", "bellows", "brick", "crucible", "ember", "flue", "forge", "furnace",
    "glaze", "hearth", "ingot", "kettle", "mould", "slag", "tongs", "vessel",
)  # fmt: skip


def random_name(taken: Collection[str]) -> str:
    """A name not in ``taken``: two words, with a number added once the words run out."""
    for _ in range(32):
        name = f"{secrets.choice(_ADJECTIVES)}_{secrets.choice(_NOUNS)}"
        if name not in taken:
            return name
    suffix = 1
    while f"{name}{suffix}" in taken:
        suffix += 1
    return f"{name}{suffix}"
