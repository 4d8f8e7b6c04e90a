"""The array reader of OSM extracts (issue 20, target 3), checked against two separate readers.

- pyosmium's C++ decoder, for what the PBF holds (every node, way, reference and tag);
- the reader it replaces, kept here as the oracle: pyrosm's highway segments, the walking
  filter as it stood before (copied verbatim, not the shared code) and the same build, which
  must give the same network: the same nodes, edges, lengths, attributes and report.
"""

from __future__ import annotations

import warnings

import numpy as np
import osmium
import pandas as pd
import pyproj
import pytest

from circles import CirclesError, InputFileError, NetworkError, WalkNetwork
from circles.engine.graph_build import osm_extent
from circles.readers import osm_pbf
from circles.readers.crs import WGS84, utm_crs
from circles.readers.osm import read_osm_bounds, read_osm_segments, read_osm_ways
from circles.readers.osm_pbf import PbfError, PbfUnsupportedError, read_pbf_ways

_TAGS = ["highway", "name", "foot", "access", "area", "sidewalk", "layer", "bridge", "tunnel",
         "sidewalk:left"]

# --- the oracle: the reader before the array path -----------------------------------------------

_OLD_WALK = frozenset({
    "footway", "path", "pedestrian", "steps", "living_street", "residential", "service",
    "unclassified", "tertiary", "tertiary_link", "secondary", "secondary_link", "primary",
    "primary_link", "track", "road", "corridor", "bridleway",
})


def _old_walkable(edges: pd.DataFrame) -> np.ndarray:
    hw = edges["highway"].astype("string").fillna("")
    foot = edges["foot"].astype("string").fillna("").str.lower()
    access = edges["access"].astype("string").fillna("").str.lower()
    area = edges["area"].astype("string").fillna("").str.lower()
    tags = edges["tags"].astype("string").fillna("")
    sidewalk = edges["sidewalk"].astype("string").fillna("").str.lower()
    foot_open = foot.isin(("yes", "designated", "permissive", "official")).to_numpy()
    has_sidewalk = (sidewalk.isin(("both", "left", "right", "yes"))
                    | tags.str.contains(r'"sidewalk:(?:both|left|right)"\s*:\s*"yes"', regex=True))
    base = hw.isin(_OLD_WALK).to_numpy() | (hw == "cycleway").to_numpy()
    trunk = hw.isin(("trunk", "trunk_link")).to_numpy() & (has_sidewalk.to_numpy() | foot_open)
    keep = base | trunk
    keep &= (foot != "no").to_numpy()
    keep &= ~(access.isin(("private", "no")).to_numpy() & ~foot_open)
    keep &= (area != "yes").to_numpy()
    return keep


def _old_network(path) -> WalkNetwork:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nodes, edges = read_osm_ways(path)
    mask = _old_walkable(edges)
    read = {"segments_in_extract": len(edges), "segments_not_walkable": int((~mask).sum()),
            "km_not_walkable": round(float(edges.loc[~mask, "geometry"].to_crs(
                utm_crs(nodes["lon"], nodes["lat"])).length.sum()) / 1000, 3) if (~mask).any() else 0.0}
    edges = edges.loc[mask]
    ids = nodes["id"].to_numpy(np.int64)
    order = np.argsort(ids)
    ids, lon, lat = ids[order], nodes["lon"].to_numpy()[order], nodes["lat"].to_numpy()[order]
    crs = utm_crs(lon, lat)
    px, py = pyproj.Transformer.from_crs(WGS84, crs, always_xy=True).transform(lon, lat)
    attrs = edges[["osm_id", "highway", "name", "bridge", "tunnel", "layer"]].reset_index(drop=True)
    attrs["bridge"] = attrs["bridge"].fillna("").astype(str)
    attrs["tunnel"] = attrs["tunnel"].fillna("").astype(str)
    net = WalkNetwork.from_lines(
        x=px, y=py, node_id=ids, edge_u=np.searchsorted(ids, edges["u"].to_numpy(np.int64)),
        edge_v=np.searchsorted(ids, edges["v"].to_numpy(np.int64)), edge_geometry=None, crs=crs,
        edge_attrs=attrs, source=str(path), report=read)
    extent, how = osm_extent(read_osm_bounds(path), lon, lat)
    net.set_extent(extent, source=how)
    return net


def _assert_same_network(new: WalkNetwork, old: WalkNetwork) -> None:
    for name in ("node_id", "x", "y", "edge_u", "edge_v", "edge_length"):
        np.testing.assert_array_equal(getattr(new, name), getattr(old, name), err_msg=name)
    pd.testing.assert_frame_equal(new.edge_attrs, old.edge_attrs)
    timing = {"build_s", "read_s"}
    assert ({k: v for k, v in new.report.items() if k not in timing}
            == {k: v for k, v in old.report.items() if k not in timing})
    assert (new.extent is None) == (old.extent is None)
    if new.extent is not None:
        assert new.extent.equals_exact(old.extent, 0)


# --- a hand-written extract with the cases a reader can get wrong -------------------------------

_NODES = "".join(f'<node id="{i}" lat="{30.66 + 0.001 * (i % 4)}" lon="{104.06 + 0.001 * (i // 4)}" '
                 'version="1"/>' for i in range(1, 25))
_WAYS = [
    ("1 2 3", {"highway": "residential", "name": "Rue \"A\" 路"}),
    ("3 99 4", {"highway": "residential"}),  # a node missing from the extract: its neighbours join
    ("5", {"highway": "footway"}),  # one node: no segment
    ("97 98", {"highway": "path"}),  # every node missing
    ("4 5", {"highway": "residential", "area": "yes;no"}),  # an area, as one of several values
    ("5 6", {"highway": "service", "area": "YES"}),
    ("6 7", {"highway": "residential;construction"}),
    ("7 8", {"highway": "construction"}),
    ("8 9", {"highway": "trunk", "sidewalk:left": "yes"}),
    ("9 10", {"highway": "trunk", "sidewalk:right": "no"}),
    ("10 11", {"highway": "trunk", "foot": "YES"}),
    ("11 12", {"highway": "footway", "layer": "-1", "tunnel": "yes"}),
    ("12 13", {"highway": "footway", "layer": "1;2", "bridge": "yes"}),
    ("13 14", {"highway": "footway", "layer": "x"}),
    ("14 15", {"highway": "residential", "access": "private;delivery"}),
    ("15 16", {"highway": "residential", "access": "No"}),
    ("1 2 3", {"highway": "residential"}),  # the first way again
    ("16 17 18 16", {"highway": "footway"}),  # closed, no area tag
    ("18 19", {"highway": "cycleway", "foot": "no"}),
    ("19 20", {"highway": "footway", "id": "5"}),  # a tag named like a structural field
    ("20 21 21 22", {"highway": "steps"}),  # a repeated node: a zero-length segment
    ("22 23", {"building": "yes"}),  # no highway
    ("23 24 1", {"highway": "living_street", "sidewalk": "Both", "layer": "2"}),
]


# No name anywhere (pyrosm then has no name column) and coordinates out of range (left out).
_BARE = ('<node id="1" lat="30.66" lon="104.06"/><node id="2" lat="30.661" lon="104.06"/>'
         '<node id="3" lat="95.0" lon="104.061"/><node id="4" lat="30.662" lon="104.062"/>'
         '<node id="5" lat="30.663" lon="190.0"/><node id="6" lat="30.664" lon="104.064"/>'
         '<way id="1"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="4"/><nd ref="5"/><nd ref="6"/>'
         '<tag k="highway" v="footway"/></way>')


def _edge_xml() -> str:
    ways = "".join(
        f'<way id="{1000 + k}" version="1">' + "".join(f'<nd ref="{r}"/>' for r in refs.split())
        + "".join(f'<tag k="{key}" v="{value.replace(chr(34), "&quot;")}"/>' for key, value in tags.items())
        + "</way>" for k, (refs, tags) in enumerate(_WAYS))
    return f"<?xml version='1.0' encoding='UTF-8'?><osm version=\"0.6\">{_NODES}{ways}</osm>"


def _as_pbf(folder, name: str, text: str):
    """A hand-written extract as the PBF osmium writes."""
    xml = folder / f"{name}.osm"
    xml.write_text(text, encoding="utf-8")
    pbf = folder / f"{name}.osm.pbf"
    with osmium.SimpleWriter(str(pbf)) as writer:
        for obj in osmium.FileProcessor(str(xml)):
            writer.add(obj)
    return pbf


@pytest.fixture(scope="module")
def edge_pbf(tmp_path_factory):
    return _as_pbf(tmp_path_factory.mktemp("osm_reader"), "cases", _edge_xml())


@pytest.fixture(scope="module")
def bare_pbf(tmp_path_factory):
    return _as_pbf(tmp_path_factory.mktemp("osm_reader"), "bare",
                   f"<?xml version='1.0' encoding='UTF-8'?><osm version=\"0.6\">{_BARE}</osm>")


def _osmium_read(path):
    ids, x, y, way_id, refs, tags = [], [], [], [], [], {k: [] for k in _TAGS}
    for obj in osmium.FileProcessor(str(path)):
        if obj.is_node():
            ids.append(obj.id)
            x.append(obj.location.x)
            y.append(obj.location.y)
        elif obj.is_way() and "highway" in obj.tags:
            way_id.append(obj.id)
            refs.append([n.ref for n in obj.nodes])
            for key in _TAGS:
                tags[key].append(obj.tags.get(key))
    return ids, x, y, way_id, refs, tags


def _assert_decoded_like_osmium(path) -> None:
    got = read_pbf_ways(path, key="highway", tags=_TAGS)
    ids, x, y, way_id, refs, tags = _osmium_read(path)
    np.testing.assert_array_equal(got.node_id, ids)
    # osmium keeps coordinates in units of 1e-7 degrees, the PBF's default granularity
    np.testing.assert_array_equal(got.lon, np.array(x) / 1e7)
    np.testing.assert_array_equal(got.lat, np.array(y) / 1e7)
    np.testing.assert_array_equal(got.way_id, way_id)
    assert [got.refs[a:b].tolist() for a, b in zip(got.way_start[:-1], got.way_start[1:], strict=True)] == refs
    for key in _TAGS:
        assert got.tags[key].tolist() == tags[key], key


@pytest.mark.parametrize("name", ["chengdu.osm.pbf", "andorra.osm.pbf"])
def test_the_decoder_reads_what_osmium_reads(data_dir, name):
    _assert_decoded_like_osmium(data_dir / name)


def test_the_decoder_reads_the_hand_written_cases_like_osmium(edge_pbf):
    _assert_decoded_like_osmium(edge_pbf)


@pytest.mark.parametrize("name", ["chengdu.osm.pbf", "andorra.osm.pbf"])
def test_the_network_is_the_one_the_pyrosm_reader_built(data_dir, name):
    path = data_dir / name
    _assert_same_network(WalkNetwork.from_osm(path), _old_network(path))


def test_the_hand_written_cases_build_the_same_network(edge_pbf, bare_pbf):
    _assert_same_network(WalkNetwork.from_osm(edge_pbf), _old_network(edge_pbf))
    bare = WalkNetwork.from_osm(bare_pbf)
    _assert_same_network(bare, _old_network(bare_pbf))
    assert bare.node_id.tolist() == [1, 2, 4, 6]  # nodes 3 and 5 lie outside ±90/±180


def test_the_segments_and_the_filter_match_pyrosm_one_by_one(edge_pbf):
    seg = read_osm_segments(edge_pbf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, edges = read_osm_ways(edge_pbf)
    np.testing.assert_array_equal(seg.node_id[seg.u], edges["u"].to_numpy(np.int64))
    np.testing.assert_array_equal(seg.node_id[seg.v], edges["v"].to_numpy(np.int64))
    np.testing.assert_array_equal(seg.walkable, _old_walkable(edges))
    kept = set(seg.attrs["osm_id"])
    # the rules by name: what pyrosm never reads, what the filter drops, what it keeps
    assert not kept & {1004, 1006, 1007}  # area=yes;no, residential;construction, construction
    assert not kept & {1005, 1009, 1015, 1018}  # area=YES, bare trunk, access=No, cycleway foot=no
    assert {1008, 1010, 1014, 1022} <= kept  # sidewalk:left=yes, foot=YES, private;delivery, Both
    assert seg.node_id[seg.u[seg.attrs.index[seg.attrs["osm_id"] == 1001]]].tolist() == [3]


def _rewritten(src, folder, options: str):
    out = folder / f"{options.replace(',', '_').replace('=', '-')}.osm.pbf"
    with osmium.SimpleWriter(osmium.io.File(str(out), options), overwrite=True) as writer:
        for obj in osmium.FileProcessor(str(src)):
            writer.add(obj)
    return out


@pytest.mark.parametrize("options", ["pbf,pbf_dense_nodes=false", "pbf,pbf_compression=none",
                                     "pbf,add_metadata=false", "pbf,locations_on_ways=true"])
def test_every_encoding_osmium_writes_reads_the_same(chengdu_pbf, tmp_path, options):
    _assert_decoded_like_osmium(_rewritten(chengdu_pbf, tmp_path, options))


def test_lz4_blocks_are_re_encoded_by_osmium(chengdu_pbf, tmp_path):
    lz4 = _rewritten(chengdu_pbf, tmp_path, "pbf,pbf_compression=lz4")
    with pytest.raises(PbfUnsupportedError):
        read_pbf_ways(lz4, key="highway", tags=["name"])
    seg, ref = read_osm_segments(lz4), read_osm_segments(chengdu_pbf)
    np.testing.assert_array_equal(seg.node_id[seg.u], ref.node_id[ref.u])
    pd.testing.assert_frame_equal(seg.attrs, ref.attrs)


def test_a_corrupt_block_is_a_clear_error(chengdu_pbf, tmp_path):
    data = bytearray(chengdu_pbf.read_bytes())
    data[len(data) // 2:len(data) // 2 + 400] = bytes(400)  # zeros inside a compressed block
    path = tmp_path / "corrupt.osm.pbf"
    path.write_bytes(bytes(data))
    with pytest.raises(PbfError):
        read_pbf_ways(path, key="highway", tags=[])
    with pytest.raises(CirclesError, match="cannot read"):
        WalkNetwork.from_osm(path)


def test_a_truncated_extract_says_so(chengdu_pbf, tmp_path):
    path = tmp_path / "cut.osm.pbf"
    path.write_bytes(chengdu_pbf.read_bytes()[:100_000])
    with pytest.raises(InputFileError, match="truncated") as err:
        read_osm_segments(path)
    assert str(path) in str(err.value)


def test_blocks_decoded_in_many_batches_read_the_same(data_dir, monkeypatch):
    whole = read_pbf_ways(data_dir / "andorra.osm.pbf", key="highway", tags=_TAGS)
    monkeypatch.setattr(osm_pbf, "_BATCH_BYTES", 1)  # every block a batch of its own
    parts = read_pbf_ways(data_dir / "andorra.osm.pbf", key="highway", tags=_TAGS)
    for name in ("node_id", "lon", "lat", "way_id", "way_start", "refs"):
        np.testing.assert_array_equal(getattr(parts, name), getattr(whole, name))
    for key in _TAGS:
        assert parts.tags[key].tolist() == whole.tags[key].tolist()


def test_an_extract_without_highways_says_so(tmp_path):
    text = f"<?xml version='1.0' encoding='UTF-8'?><osm version=\"0.6\">{_NODES}"
    text += '<way id="1"><nd ref="1"/><nd ref="2"/><tag k="building" v="yes"/></way></osm>'
    with pytest.raises(NetworkError, match="no highway"):
        read_osm_segments(_as_pbf(tmp_path, "buildings", text))
