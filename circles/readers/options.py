"""Keyword options gathered into a dataclass, an unknown name being a clear error."""

from __future__ import annotations

from dataclasses import fields

from ..errors import DataError

__all__ = ["known_options"]


def known_options(cls: type, options: dict, *, what: str) -> dict:
    """``options`` when every name is a field of the dataclass ``cls``.

    Raises
    ------
    DataError
        Naming the first unknown option and listing the known ones (``what``: "road-line"...).

    """
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise DataError(f"unknown {what} option {', '.join(unknown)}", field=unknown[0],
                        fix="use one of: " + ", ".join(sorted(known)))
    return options
