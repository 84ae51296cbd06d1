"""Argument helpers shared by the training commands (no command imports another)."""

from __future__ import annotations


def pairs(items: list[str], flag: str) -> dict[str, str]:
    """``["NAME=PATH", ...]`` -> ``{NAME: PATH}``; anything else is a ValueError naming ``flag``."""
    named = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"{flag} takes NAME=PATH, got {item!r}")
        name, path = item.split("=", 1)
        named[name] = path
    return named
