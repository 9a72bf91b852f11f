"""The environment, read once when a function starts.

A function that is missing a variable must fail at its cold start with the variable's name, not
later with a `KeyError` deep inside a request, so each handler module calls `require()` at import.
"""

from __future__ import annotations

import os


class MissingSetting(RuntimeError):
    """An environment variable the function needs is not set (see template.yaml)."""


def require(name: str) -> str:
    """Return the variable's value, or stop the cold start naming what template.yaml must set."""
    value = os.environ.get(name, "").strip()
    if not value:
        raise MissingSetting(
            f"environment variable {name} is not set; template.yaml must give it to this function"
        )
    return value


def optional_float(name: str, default: float) -> float:
    """Read a numeric tuning knob, refusing a value that is not a number instead of guessing."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise MissingSetting(f"environment variable {name} must be a number, got {raw!r}") from None


def optional_text(name: str) -> str:
    """A setting that may be empty (its empty value means something: see template.yaml)."""
    return os.environ.get(name, "").strip()
