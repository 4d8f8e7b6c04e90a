"""Reading an OSM PBF extract into NumPy arrays: its nodes, and the ways that carry one key, with
the tags asked for.

A PBF file (https://wiki.openstreetmap.org/wiki/PBF_Format) is a sequence of compressed
protobuf blocks of up to 8,000 elements each. Only the few small messages of each block (its
header, its layout) are parsed in Python; everything that repeats per element (a block's strings,
its ways, the packed ids, coordinates, tags and node references) is decoded with array
operations over all the blocks of a batch at once.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .protobuf_arrays import (
    DecodeError,
    UnsupportedEncodingError,
    fields,
    message_fields,
    packed_varints,
    repeated_fields,
    running_sums,
    utf8_strings,
    zigzag,
)

__all__ = ["PbfError", "PbfUnsupportedError", "PbfWays", "read_pbf_ways"]

# Decompressed bytes decoded together: bounds the memory a large extract takes while reading.
_BATCH_BYTES = 64 * 2**20
# Zero bytes after a batch, so that vectorised varint reads near its end never index past it.
_PAD = 16
# The required features this decoder reads; the format says a reader must refuse any other.
_KNOWN_FEATURES = frozenset({"OsmSchema-V0.6", "DenseNodes"})
# The first byte (field number << 3 | wire type 2) of each kind of PrimitiveGroup content.
_NODES, _DENSE, _WAYS = 0x0A, 0x12, 0x1A
_STRING = 0x0A  # StringTable.s


# The file is not a readable PBF extract (truncated or corrupt) ...
PbfError = DecodeError
# ... or a valid one in an encoding this decoder does not read (lz4 or zstd blocks, repeated
# fields not packed): osmium can re-encode it.
PbfUnsupportedError = UnsupportedEncodingError


@dataclass(frozen=True)
class PbfWays:
    """The nodes of an extract and its ways carrying a key.

    Attributes
    ----------
    node_id, lon, lat : numpy.ndarray
        Every node of the file in file order (int64 ids; float64 degrees, computed as pyrosm and
        the format define them: ``(raw * granularity + offset) / 1e9``).
    way_id : numpy.ndarray
        The ways carrying the key, in file order.
    way_start : numpy.ndarray
        Offsets of each way's node references in ``refs`` (``len(way_id) + 1`` values).
    refs : numpy.ndarray
        The ways' node ids, way after way.
    tags : dict of str to numpy.ndarray
        Per way, the value of each tag asked for (``None`` when the way has none).

    """

    node_id: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    way_id: np.ndarray
    way_start: np.ndarray
    refs: np.ndarray
    tags: dict[str, np.ndarray]


def read_pbf_ways(path: str | Path, *, key: str, tags: Sequence[str]) -> PbfWays:
    """Read the nodes and the ways carrying ``key`` (with the values of ``tags``) of a PBF file.

    Parameters
    ----------
    path
        An ``.osm.pbf`` file.
    key
        Only ways with this tag are returned (``"highway"``).
    tags
        The tags whose values are returned per way.

    Returns
    -------
    PbfWays

    Raises
    ------
    PbfUnsupportedError
        The file uses an encoding this decoder does not read.
    PbfError
        The file is truncated or corrupt.

    """
    wanted = [key, *[t for t in tags if t != key]]
    parts: list[dict] = []
    batch: list[tuple[bytes, tuple]] = []
    size = 0
    for kind, raw in _blocks(Path(path).read_bytes()):
        if kind == "OSMHeader":
            _check_features(raw)
        elif kind == "OSMData":
            batch.append((raw, _block_layout(raw)))
            size += len(raw)
            if size >= _BATCH_BYTES:
                parts.append(_decode_batch(batch, wanted))
                batch, size = [], 0
    if batch:
        parts.append(_decode_batch(batch, wanted))
    return _joined(parts, wanted)


def _joined(parts: list[dict], wanted: list[str]) -> PbfWays:
    if not parts:
        parts = [_empty_part(wanted)]
    counts = np.concatenate([np.diff(p["way_start"]) for p in parts])
    way_start = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=way_start[1:])
    cat = {k: np.concatenate([p[k] for p in parts]) for k in ("node_id", "lon", "lat", "way_id", "refs")}
    values = {t: np.concatenate([p["tags"][t] for p in parts]) for t in wanted}
    return PbfWays(way_start=way_start, tags=values, **cat)


def _empty_part(wanted: list[str]) -> dict:
    i = np.zeros(0, dtype=np.int64)
    f = np.zeros(0, dtype=np.float64)
    return {"node_id": i, "lon": f, "lat": f, "way_id": i, "refs": i,
            "way_start": np.zeros(1, dtype=np.int64),
            "tags": {t: np.zeros(0, dtype=object) for t in wanted}}


# --- the file: blobs and their small messages, parsed in Python --------------------------------


def _blocks(data: bytes) -> Iterator[tuple[str, bytes]]:
    """Each blob's type and decompressed content, in file order."""
    pos, n = 0, len(data)
    view = memoryview(data)
    while pos < n:
        if pos + 4 > n:
            raise PbfError("the file ends inside a block header; it is truncated")
        head = int.from_bytes(data[pos:pos + 4], "big")
        pos += 4
        if head > 64 * 1024 or pos + head > n:
            raise PbfError("a block header runs past the end of the file; it is truncated")
        kind, size = "", 0
        for number, _, value, stop in fields(data, pos, pos + head):
            if number == 1:
                kind = data[value:stop].decode("utf-8", "replace")
            elif number == 3:
                size = value
        pos += head
        if pos + size > n:
            raise PbfError("a block runs past the end of the file; it is truncated")
        yield kind, _blob_content(view[pos:pos + size])
        pos += size


def _blob_content(blob: memoryview) -> bytes:
    for number, _, start, stop in fields(blob):
        payload = blob[start:stop]
        try:
            if number == 1:
                return bytes(payload)
            if number == 3:
                return zlib.decompress(payload)
            if number == 4:
                return lzma.decompress(payload)
            if number == 5:
                return bz2.decompress(payload)
        except (zlib.error, lzma.LZMAError, OSError, ValueError) as err:
            raise PbfError(f"a block does not decompress ({err}); the file is corrupt") from err
        if number in (6, 7):
            raise PbfUnsupportedError("lz4 or zstd compressed blocks")
    raise PbfError("a block without data")


def _check_features(header: bytes) -> None:
    for number, wire, start, stop in fields(header):
        if number == 4 and wire == 2:
            feature = header[start:stop].decode("utf-8", "replace")
            if feature not in _KNOWN_FEATURES:
                raise PbfError(f"the extract requires the feature {feature!r}, which this reader "
                               "does not support (an OSM history file?)")


def _signed(value: int) -> int:
    """A protobuf int64 read as an unsigned varint, back to its sign."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _block_layout(raw: bytes) -> tuple[tuple[int, int], list[tuple[int, int]], int, int, int]:
    """A PrimitiveBlock's string table span, its groups' spans, granularity and offsets."""
    strings, groups = (0, 0), []
    granularity, lat_offset, lon_offset = 100, 0, 0
    for number, _, value, stop in fields(raw):
        if number == 1:
            strings = (value, stop)
        elif number == 2:
            groups.append((value, stop))
        elif number == 17:
            granularity = value
        elif number == 19:
            lat_offset = _signed(value)
        elif number == 20:
            lon_offset = _signed(value)
    return strings, groups, granularity, lat_offset, lon_offset


# --- a batch of blocks, decoded with arrays ------------------------------------------------------


def _decode_batch(batch: list[tuple[bytes, tuple]], wanted: list[str]) -> dict:
    data = b"".join(raw for raw, _ in batch) + bytes(_PAD)
    buf = np.frombuffer(data, dtype=np.uint8)
    base = np.cumsum([0] + [len(raw) for raw, _ in batch[:-1]])
    spans: dict[int, list[tuple[int, int, int]]] = {_NODES: [], _DENSE: [], _WAYS: []}
    table = []
    for b, (raw, (strings, groups, *_)) in enumerate(batch):
        table.append((base[b] + strings[0], base[b] + strings[1]))
        for start, stop in groups:
            if stop > start and raw[start] in spans:
                spans[raw[start]].append((b, base[b] + start, base[b] + stop))
    table_span = np.array(table, dtype=np.int64).reshape(-1, 2)
    starts, lens, owner = repeated_fields(buf, table_span[:, 0], table_span[:, 1], _STRING)
    text = utf8_strings(buf, starts, lens)
    first_string = np.searchsorted(owner, np.arange(len(batch)))
    grid = np.array([layout[2:] for _, layout in batch], dtype=np.int64).reshape(-1, 3)
    node_id, lon, lat = _nodes(data, buf, spans, grid)
    ways = _ways(buf, spans[_WAYS], first_string, text, wanted)
    return {"node_id": node_id, "lon": lon, "lat": lat, **ways}


def _spans(items: list[tuple[int, int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    block, start, stop = np.array(items, dtype=np.int64).reshape(-1, 3).T
    return block, start, stop


def _nodes(data: bytes, buf: np.ndarray, spans: dict, grid: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ids and coordinates (degrees) of the nodes of a batch: dense groups, then plain ones."""
    dense = []  # per DenseNodes message: its block and the spans of its id, lat and lon fields
    for block, start, stop in spans[_DENSE]:
        for number, _, value, end in fields(data, start, stop):
            if number == 2:
                found = {n: (v, e - v) for n, _, v, e in fields(data, value, end) if n in (1, 8, 9)}
                dense.append((block, *(found.get(n, (0, 0)) for n in (1, 8, 9))))
    columns = []
    for f in (1, 2, 3):  # id, lat, lon: delta-coded sint64
        span = np.array([d[f] for d in dense], dtype=np.int64).reshape(-1, 2)
        values, counts = packed_varints(buf, span[:, 0], span[:, 1])
        columns.append(running_sums(zigzag(values), counts))
        if f == 1:
            block = np.repeat(np.array([d[0] for d in dense], dtype=np.int64), counts)
        elif len(values) != len(block):
            raise PbfError("dense nodes with unequal numbers of ids and coordinates")
    plain = _plain_nodes(buf, spans[_NODES])
    node_id, raw_lat, raw_lon, block = (np.concatenate(pair) for pair in
                                        zip([*columns, block], plain, strict=True))
    g = grid[block]
    lat = (raw_lat * g[:, 0] + g[:, 1]) / 1_000_000_000
    lon = (raw_lon * g[:, 0] + g[:, 2]) / 1_000_000_000
    return node_id, lon, lat


def _plain_nodes(buf: np.ndarray, items: list[tuple[int, int, int]]) -> tuple[np.ndarray, ...]:
    """Ids, raw lat, raw lon and block of the (rare) non-dense nodes."""
    block, start, stop = _spans(items)
    starts, lens, group = repeated_fields(buf, start, stop, _NODES)
    got = message_fields(buf, starts, starts + lens, {1: 0, 8: 0, 9: 0})  # id, lat, lon: sint64
    return zigzag(got[1][0]), zigzag(got[8][0]), zigzag(got[9][0]), block[group]


def _ways(buf: np.ndarray, items: list[tuple[int, int, int]], first_string: np.ndarray,
          text: np.ndarray, wanted: list[str]) -> dict:
    """The ways carrying ``wanted[0]``: ids, node references and the values of ``wanted``."""
    block, start, stop = _spans(items)
    starts, lens, group = repeated_fields(buf, start, stop, _WAYS)
    f = message_fields(buf, starts, starts + lens, {1: 0, 2: 2, 3: 2, 8: 2})  # id, keys, vals, refs
    keys, n_keys = packed_varints(buf, *f[2])
    vals, n_vals = packed_varints(buf, *f[3])
    if not np.array_equal(n_keys, n_vals):
        raise PbfError("a way with unequal numbers of tag keys and values")
    way_block = np.repeat(block[group], n_keys)
    n_strings = np.diff(np.r_[first_string, len(text)])[way_block]
    if (keys >= n_strings).any() or (vals >= n_strings).any():
        raise PbfError("a tag refers past the end of its block's string table")
    offset = first_string[way_block]
    code = _key_codes(keys.astype(np.int64) + offset, text, wanted)
    owner = np.repeat(np.arange(len(starts)), n_keys)
    keep = np.zeros(len(starts), dtype=bool)
    keep[owner[code == 0]] = True
    values = {}
    for c, name in enumerate(wanted):
        col = np.full(len(starts), None, dtype=object)
        hit = code == c
        col[owner[hit]] = text[vals[hit].astype(np.int64) + offset[hit]]
        values[name] = col[keep]
    refs, n_refs = packed_varints(buf, f[8][0][keep], f[8][1][keep])
    way_start = np.zeros(int(keep.sum()) + 1, dtype=np.int64)
    np.cumsum(n_refs, out=way_start[1:])
    return {"way_id": f[1][0][keep].astype(np.int64), "refs": running_sums(zigzag(refs), n_refs),
            "way_start": way_start, "tags": values}


def _key_codes(key_text: np.ndarray, text: np.ndarray, wanted: list[str]) -> np.ndarray:
    """Each tag's position in ``wanted`` by its key's string (-1: not wanted). Each distinct key
    string is looked up once, through a table over the batch's strings rather than a sort."""
    is_key = np.zeros(len(text), dtype=bool)
    is_key[key_text] = True
    distinct = np.flatnonzero(is_key)
    code_of = np.full(len(text), -1, dtype=np.int64)
    code_of[distinct] = pd.Index(wanted).get_indexer(text[distinct])
    return code_of[key_text]
