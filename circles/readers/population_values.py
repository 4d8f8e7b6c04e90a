"""Population counts read strictly: what is a count of people, and what to do with what is not.

A count is a number ≥ 0. Thousands separators are read only where unambiguous (``1,200``,
``12,345,678``); blanks, NaN, negatives, ``约300``, words and ``1,2`` / ``1,20`` (a decimal comma?)
are invalid: an error naming file, spreadsheet row, column, value and fix, or with
``drop_invalid`` one counted exclusion per cause.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import DataError

_MAX_LISTED_ROWS = 50


def row_list(mask: np.ndarray, first_row: int = 2) -> str:
    """The spreadsheet rows of ``mask`` (header = row 1), the first 50 listed."""
    idx = np.flatnonzero(mask) + first_row
    text = ",".join(map(str, idx[:_MAX_LISTED_ROWS]))
    return text + (f",… ({len(idx)} rows)" if len(idx) > _MAX_LISTED_ROWS else "")


def first_row_of(df: pd.DataFrame) -> int:
    return int(df.attrs.get("first_row", 2))


_GROUPED = r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?"  # 1,200 and 12,345,678: unambiguous
_INVALID_FIX = "correct the value, or pass --drop-invalid (drop_invalid=True) to exclude such rows and count them"


def parse_counts(s: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts of ``s`` (NaN where invalid), why each invalid one is, and which had separators.

    Thousands separators are read only in groups of exactly three digits (``1,200``); ``1,2``
    or ``1,20`` could be a decimal comma and is refused, as are ``约300``, words and blanks.
    """
    why = np.full(len(s), "", dtype=object)
    if pd.api.types.is_bool_dtype(s):
        return np.full(len(s), np.nan), np.full(len(s), "not a number", dtype=object), np.zeros(len(s), bool)
    if pd.api.types.is_numeric_dtype(s):
        v, grouped = s.to_numpy(float), np.zeros(len(s), dtype=bool)
        why[np.isnan(v)] = "empty"
    else:
        t = s.astype("string").str.strip().str.replace("，", ",", regex=False)
        grouped = t.str.fullmatch(_GROUPED).fillna(False).to_numpy(bool)
        v = pd.to_numeric(t.str.replace(",", "", regex=False).where(grouped, t), errors="coerce").to_numpy(
            dtype=float, na_value=np.nan)
        blank = (t.isna() | (t == "")).to_numpy(bool)
        why[~np.isfinite(v)] = "not a number"
        why[~np.isfinite(v) & t.str.contains(",", regex=False).fillna(False).to_numpy(bool)] = \
            "an ambiguous thousands separator (1,200 and 12,345,678 are read; 1,2 or 1,20 are not)"
        why[blank] = "empty"
    why[np.isinf(v)] = "not a number"
    why[np.isfinite(v) & (v < 0)] = "negative"
    return np.where(why == "", v, np.nan), why, grouped


def check_values(df: pd.DataFrame, col: str, why: np.ndarray, file, *, drop_invalid: bool,
                  taken: str = "row dropped") -> list[dict]:
    """Raise on the first invalid value; with ``drop_invalid`` one counted exclusion per cause."""
    bad = why != ""
    if not bad.any():
        return []
    first_row = first_row_of(df)
    if not drop_invalid:
        i = int(np.flatnonzero(bad)[0])
        more = int(bad.sum()) - 1
        raw = df[col].iloc[i]
        value = "" if pd.isna(raw) else str(raw)
        raise DataError(f"'{value}' is not a count of people: {why[i]}"
                        + (f" ({more} more row{'s' if more > 1 else ''} like it)" if more else ""),
                        file=file, row=first_row + i, field=col, fix=_INVALID_FIX)
    return [{"reason": f"rows with an invalid '{col}' ({w}; {taken} with --drop-invalid)", "pop": 0.0,
             "rows": row_list(why == w, first_row), "n": int((why == w).sum())} for w in dict.fromkeys(why[bad])]
