"""Protobuf decoded with NumPy: varints, packed fields and repeated messages of many messages at
once, for binary formats whose elements come by the thousand (the OSM PBF format).

A protobuf message is a sequence of fields, each a tag varint and a value (a varint, or a length
and that many bytes). Decoding one field after another is a Python loop per element; here every
step works on arrays of positions, so a block's ways or strings are read in a few array
operations whatever their number.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa

__all__ = [
    "DecodeError",
    "UnsupportedEncodingError",
    "concat_ranges",
    "fields",
    "message_fields",
    "packed_varints",
    "repeated_fields",
    "running_sums",
    "utf8_strings",
    "varint",
    "varints_at",
    "zigzag",
]


class DecodeError(ValueError):
    """The bytes are not the protobuf they should be (truncated or corrupt)."""


class UnsupportedEncodingError(DecodeError):
    """Valid protobuf in a form these functions do not read (a repeated field not packed, or
    given twice in one message)."""


# --- one small message, in Python (headers, a block's layout) ----------------------------------


def varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it."""
    value = shift = 0
    while shift < 70:
        if pos >= len(data):
            raise DecodeError("a message runs past its end")
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
    raise DecodeError("a varint longer than ten bytes")


def fields(data: bytes | memoryview, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int, int, int]]:
    """The fields of one message: ``(number, wire type, value or payload start, payload end)``."""
    end = len(data) if end is None else end
    pos = start
    while pos < end:
        tag, pos = varint(data, pos)
        wire = tag & 7
        if wire == 0:
            value, pos = varint(data, pos)
            yield tag >> 3, wire, value, pos
        elif wire == 2:
            n, pos = varint(data, pos)
            if pos + n > end:
                raise DecodeError("a message runs past its end")
            yield tag >> 3, wire, pos, pos + n
            pos += n
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise DecodeError(f"unknown protobuf wire type {wire}")


# --- many fields at once, with arrays -----------------------------------------------------------


def concat_ranges(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """The concatenated ``arange(s, s + n)`` of every span."""
    total = int(lens.sum())
    offsets = np.cumsum(lens) - lens
    return np.repeat(starts - offsets, lens) + np.arange(total, dtype=np.int64)


def varints_at(buf: np.ndarray, pos: np.ndarray, width: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """The varint starting at each position (uint64) and its length in bytes (0 when no varint
    ends within ``width`` bytes).

    Byte by byte over the varints still open: most are one or two bytes long, so the later
    steps touch few positions.
    """
    value = np.zeros(len(pos), dtype=np.uint64)
    n = np.zeros(len(pos), dtype=np.int64)
    open_ = np.arange(len(pos))
    at = np.asarray(pos, dtype=np.int64)
    for k in range(width):
        b = buf[np.minimum(at, len(buf) - 1)]
        value[open_] |= (b & 0x7F).astype(np.uint64) << np.uint64(7 * k)
        done = b < 0x80
        n[open_[done]] = k + 1
        open_, at = open_[~done], at[~done] + 1
        if not len(open_):
            break
    return value, n


def packed_varints(buf: np.ndarray, starts: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The packed varints of every span (uint64) and how many each span holds."""
    b = buf[concat_ranges(starts, lens)]
    last = b < 0x80
    ends = np.cumsum(lens)
    if len(b) and not last[ends[lens > 0] - 1].all():
        raise DecodeError("a packed field ends inside a varint")
    first = np.flatnonzero(np.r_[True, last[:-1]])[: int(last.sum())]
    k = np.arange(len(b)) - np.repeat(first, np.diff(np.r_[first, len(b)]))
    if len(k) and k.max() > 9:
        raise DecodeError("a varint longer than ten bytes")
    part = (b & 0x7F).astype(np.uint64) << (7 * k).astype(np.uint64)
    values = np.bitwise_or.reduceat(part, first) if len(first) else np.zeros(0, dtype=np.uint64)
    count = np.r_[0, np.cumsum(last)]
    return values, count[ends] - count[ends - lens]


def zigzag(values: np.ndarray) -> np.ndarray:
    """Protobuf's sint64 values (zigzag-coded varints) back to int64."""
    v = values.astype(np.uint64)
    return ((v >> np.uint64(1)) ^ (np.uint64(0) - (v & np.uint64(1)))).view(np.int64)


def running_sums(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Running sums restarting at each span (delta-coded ids and coordinates); int64 wraps, and
    the subtraction unwraps it exactly."""
    total = np.cumsum(values)
    before = np.r_[np.int64(0), total][np.cumsum(counts) - counts]
    return total - np.repeat(before, counts)


def utf8_strings(buf: np.ndarray, starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """The strings of the spans as an object array (decoded by Arrow, checked as UTF-8)."""
    data = buf[concat_ranges(starts, lens)]
    offsets = np.r_[0, np.cumsum(lens)].astype(np.int64)
    arr = pa.Array.from_buffers(pa.large_utf8(), len(lens), [None, pa.py_buffer(offsets),
                                                              pa.py_buffer(data.tobytes())])
    try:
        arr.validate(full=True)
    except pa.ArrowInvalid as err:
        raise DecodeError(f"a string that is not UTF-8 ({err})") from err
    return arr.to_numpy(zero_copy_only=False)


def repeated_fields(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, tag: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The repeated length-delimited fields ``tag`` (a one-byte tag: field number below 16, wire
    type 2) filling each region ``[starts, ends)``, regions in order and apart.

    Each field starts where the one before it ends, a chain a Python loop would walk element by
    element. Instead every byte equal to ``tag`` is a candidate start, each candidate's successor
    is computed at once, and the chains from the regions' starts are followed by pointer doubling
    (log2 of the longest chain steps).

    Returns
    -------
    starts, lengths, regions : numpy.ndarray
        Each field's payload start and length and the position of its region, in order.

    """
    keep = ends > starts
    starts, ends, region = starts[keep], ends[keep], np.flatnonzero(keep)
    cand = np.flatnonzero(buf == tag)
    r = np.searchsorted(ends, cand, side="right")
    inside = r < len(starts)
    inside[inside] &= cand[inside] >= starts[r[inside]]
    cand, r = cand[inside], r[inside]
    n_len, len_bytes = varints_at(buf, cand + 1, width=5)
    nxt = cand + 1 + len_bytes + n_len.astype(np.int64)
    j = np.minimum(np.searchsorted(cand, nxt), max(len(cand) - 1, 0))
    ok = len_bytes > 0  # a candidate whose length is no varint is no field start
    link = np.where(ok & (nxt < ends[r]) & (cand[j] == nxt), j, len(cand)) if len(cand) else j
    last = ok & (nxt == ends[r])
    head = np.searchsorted(cand, starts)
    if (head >= len(cand)).any() or (cand[np.minimum(head, len(cand) - 1)] != starts).any():
        raise DecodeError("a region is not the repeated field it should be")
    mark = np.zeros(len(cand) + 1, dtype=bool)
    mark[head] = True
    jump = np.r_[link, len(cand)]
    while True:
        mark[jump[np.flatnonzero(mark)]] = True
        if (jump[head] == len(cand)).all():
            break
        jump = jump[jump]
    chain = np.flatnonzero(mark[:-1])
    if not (last[chain] | (link[chain] < len(cand))).all() or last[chain].sum() != len(starts):
        raise DecodeError("a region is not the repeated field it should be")
    return cand[chain] + 1 + len_bytes[chain], n_len[chain].astype(np.int64), region[r[chain]]


def message_fields(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, want: dict[int, int]
                   ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Fields ``want`` (number: wire type) of many messages at once, in lockstep: one step per
    field position, each step over all the messages still open.

    Returns, per field number, ``(value, 0)`` for varints and ``(payload start, length)`` for
    length-delimited fields; absent fields are 0.
    """
    out = {f: (np.zeros(len(starts), dtype=np.uint64 if w == 0 else np.int64),
               np.zeros(len(starts), dtype=np.int64)) for f, w in want.items()}
    seen = {f: np.zeros(len(starts), dtype=bool) for f in want}
    msg, pos = np.arange(len(starts)), starts.astype(np.int64)
    while len(msg):
        tag, tag_bytes = varints_at(buf, pos)
        field, wire = (tag >> np.uint64(3)).astype(np.int64), (tag & np.uint64(7)).astype(np.int64)
        value, value_bytes = varints_at(buf, pos + tag_bytes)
        size = np.select([wire == 0, wire == 2, wire == 1, wire == 5],
                         [value_bytes, value_bytes + value.astype(np.int64), 8, 4], -1)
        bad = (tag_bytes == 0) | (size < 0) | ((wire == 0) | (wire == 2)) & (value_bytes == 0)
        if bad.any():
            raise DecodeError("a message that is no protobuf")
        for f, w in want.items():
            hit = field == f
            if not hit.any():
                continue
            if (wire[hit] != w).any() or seen[f][msg[hit]].any():
                raise UnsupportedEncodingError(f"field {f} repeated or not packed")
            seen[f][msg[hit]] = True
            first = value[hit] if w == 0 else pos[hit] + tag_bytes[hit] + value_bytes[hit]
            out[f][0][msg[hit]] = first
            out[f][1][msg[hit]] = 0 if w == 0 else value[hit].astype(np.int64)
        pos = pos + tag_bytes + size
        if (pos > ends[msg]).any():
            raise DecodeError("a field runs past the end of its message")
        open_ = pos < ends[msg]
        msg, pos = msg[open_], pos[open_]
    return out
