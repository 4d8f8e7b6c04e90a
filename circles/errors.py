"""The exception family of circles.

Every error a user can cause names where the problem is (file, row, field) and what to do about it,
so a planner can fix the input without reading a traceback.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "CirclesError",
    "DataError",
    "InputFileError",
    "NetworkError",
    "OfflineError",
    "ProfileError",
    "ValidationError",
]


class CirclesError(Exception):
    """Base class of every error raised on purpose by circles.

    Parameters
    ----------
    message
        What is wrong, in one sentence.
    file
        The file the problem is in, if any.
    row
        The row as the user's spreadsheet shows it (header = row 1, so the first data row is
        row 2, more below title rows; a GIS layer's features count from 1), if any.
    field
        The column, layer or key, if any.
    fix
        What the user should do about it.

    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        row: int | None = None,
        field: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.message = message
        self.file = None if file is None else str(file)
        self.row = row
        self.field = field
        self.fix = fix
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.field:
            where.append(f"field '{self.field}'")
        text = (": ".join([", ".join(where), self.message]) if where else self.message)
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text


class InputFileError(CirclesError):
    """A file is missing, empty, truncated or of a format circles cannot read."""


class NetworkError(CirclesError):
    """A walking network cannot be built or used (no walkable way, nothing connected...)."""


class ProfileError(CirclesError):
    """A profile (tiers, thresholds, standards) is invalid."""


class DataError(CirclesError):
    """Table contents are wrong: missing columns, bad values, unknown codes."""


class ValidationError(DataError):
    """Several problems found in one table, reported together.

    Parameters
    ----------
    problems
        One dict per problem with keys ``row``, ``field``, ``value``, ``problem`` and ``fix``.
    file
        The table's file.

    """

    def __init__(self, problems: list[dict], *, file: str | Path | None = None) -> None:
        self.problems = problems
        lines = [f"{len(problems)} problem(s) found:"]
        for p in problems[:50]:
            where = f"row {p['row']}" if p.get("row") is not None else "table"
            field = f", field '{p['field']}'" if p.get("field") else ""
            value = f" (value {p['value']!r})" if p.get("value") is not None else ""
            lines.append(f"  - {where}{field}{value}: {p['problem']}; fix: {p['fix']}")
        if len(problems) > 50:
            lines.append(f"  ... and {len(problems) - 50} more")
        super().__init__("\n".join(lines), file=file)


class OfflineError(CirclesError):
    """An online source (a place name) was asked for but the internet cannot be reached."""
