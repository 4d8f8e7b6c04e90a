"""Reading planners' tables (issue 16, item 6, and control characters of item 8).

Encodings behind a byte-order mark, title rows above the header, row numbers as the spreadsheet
shows them, two coordinate pairs in one table, and control characters in names.
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
import shapely
from circles.facilities import facilities_from_frame, read_facilities
from circles.tables import read_table, table_points

from circles.errors import DataError, InputFileError, ValidationError

HEADER = ["编号", "名称", "级别", "经度", "纬度"]
ROWS = [["A1", "锦江片区中心", "片区级", 104.0810, 30.6570],
        ["A2", "社区中心", "社区级", 104.0700, 30.6700],
        ["A3", "驿站", "驿站级", 104.0650, 30.6650]]


def _csv(rows: list[list]) -> str:
    return "".join(",".join(map(str, r)) + "\n" for r in rows)


def test_bom_before_gbk_bytes_keeps_the_first_column_name(tmp_path):
    path = tmp_path / "bom_gbk.csv"
    path.write_bytes(b"\xef\xbb\xbf" + _csv([HEADER, *ROWS]).encode("gbk"))
    df = read_table(path)
    assert list(df.columns) == HEADER  # not the mark read as GBK: 锘縷...
    fac = read_facilities(path)
    assert list(fac["facility_id"]) == ["A1", "A2", "A3"]
    assert list(fac["name"]) == [r[1] for r in ROWS]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_the_usual_encodings_still_read(tmp_path, encoding):
    path = tmp_path / "plain.csv"
    path.write_bytes(_csv([HEADER, *ROWS]).encode(encoding))
    assert list(read_table(path).columns) == HEADER


def test_csv_title_rows_are_skipped_and_rows_counted_as_the_spreadsheet_shows(tmp_path):
    bad = [["A4", "坏坐标", "驿站级", "东边", 30.66]]
    path = tmp_path / "titled.csv"
    path.write_text(_csv([["锦江区社区服务设施清单"], ["制表：规划科", "2024年"], [], HEADER, *ROWS, *bad]),
                    encoding="utf-8")
    df = read_table(path)
    assert list(df.columns) == HEADER
    assert df.attrs["first_row"] == 5  # header on line 4
    with pytest.raises(ValidationError) as err:
        read_facilities(path)
    # The bad row is line 8 of the file (1-based), counted independently of circles.
    lines = path.read_text(encoding="utf-8").splitlines()
    expected = next(i for i, line in enumerate(lines, start=1) if "东边" in line)
    assert expected == 8
    assert [(p["row"], p["field"]) for p in err.value.problems] == [(expected, "经度")]
    assert "row 8" in str(err.value)


def test_excel_title_row_is_skipped_and_rows_are_excel_rows(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["成都市锦江区十五分钟生活圈设施"])
    ws.append([])
    ws.append(HEADER)
    for r in ROWS:
        ws.append(r)
    ws.append(["A4", "无级别", "", 104.06, 30.66])
    path = tmp_path / "titled.xlsx"
    wb.save(path)
    df = read_table(path)
    assert list(df.columns) == HEADER
    assert df.attrs["first_row"] == 4
    with pytest.raises(ValidationError) as err:
        read_facilities(path)
    sheet = openpyxl.load_workbook(path).active
    expected = next(c.row for c in sheet["B"] if c.value == "无级别")
    assert [(p["row"], p["problem"]) for p in err.value.problems] == [(expected, "no tier")]


def test_a_title_above_an_unknown_header_says_where_the_header_is(tmp_path):
    path = tmp_path / "unknown.csv"
    path.write_text(_csv([["设施清单"], [], ["设施", "档次", "东经", "北纬"], ["a", "社区级", 104.07, 30.67]]),
                    encoding="utf-8")
    with pytest.raises(InputFileError) as err:
        read_table(path)
    assert err.value.row == 1
    assert "the header seems to be on row 3, not row 1" in err.value.fix


def test_header_on_row_one_is_row_one_and_layers_count_from_one(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text(_csv([HEADER, *ROWS]), encoding="utf-8")
    assert read_table(path).attrs["first_row"] == 2
    gdf = gpd.GeoDataFrame({"name": ["a", "b"], "tier": ["station", "bogus"]},
                           geometry=shapely.points([104.07, 104.08], [30.67, 30.66]), crs=4326)
    layer = tmp_path / "fac.gpkg"
    gdf.to_file(layer)
    assert read_table(layer).attrs["first_row"] == 1
    with pytest.raises(ValidationError) as err:
        read_facilities(layer)
    assert [p["row"] for p in err.value.problems] == [2]  # the second feature


def test_row_numbers_follow_first_row_through_the_readers():
    df = pd.DataFrame({"name": ["a", "b"], "tier": ["station", "station"], "lon": [104.07, None],
                       "lat": [30.67, 30.66]})
    df.attrs["first_row"] = 7
    with pytest.raises(ValidationError) as err:
        facilities_from_frame(df)
    assert [p["row"] for p in err.value.problems] == [8]
    df.attrs.clear()  # a frame made in memory counts like a spreadsheet
    assert table_points(df)[2][0]["row"] == 3
    ok = facilities_from_frame(df.fillna({"lon": 104.0}))
    assert list(ok["source_row"]) == [2, 3]


def test_two_coordinate_pairs_that_differ_are_an_error_naming_both(tmp_path):
    path = tmp_path / "two_pairs.csv"
    path.write_text(_csv([["name", "tier", "lon", "lat", "经度", "纬度"],
                          ["a", "station", 104.07, 30.67, 104.07, 30.67],
                          ["b", "station", 104.07, 30.67, 104.0812, 30.67]]), encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_facilities(path)
    assert err.value.row == 3
    assert "lon/lat" in str(err.value)
    assert "经度/纬度" in str(err.value)
    assert "104.0812" in str(err.value)


def test_two_coordinate_pairs_that_agree_are_one(tmp_path):
    path = tmp_path / "agree.csv"
    path.write_text(_csv([["name", "tier", "lon", "lat", "经度", "纬度", "x", "y"],
                          ["a", "station", 104.07, 30.67, "104.0700", 30.67, 104.07, 30.67],
                          ["b", "station", "", "", 104.08, 30.66, "", ""]]), encoding="utf-8")
    fac = read_facilities(path)
    np.testing.assert_allclose(fac.geometry.x, [104.07, 104.08])
    np.testing.assert_allclose(fac.geometry.y, [30.67, 30.66])


def test_projected_xy_beside_lonlat_is_not_a_second_pair(tmp_path):
    path = tmp_path / "both.csv"
    path.write_text(_csv([["name", "tier", "lon", "lat", "x", "y"],
                          ["a", "station", 104.07, 30.67, 35406789.1, 3393456.7]]), encoding="utf-8")
    fac = read_facilities(path)
    assert fac.geometry.x.iloc[0] == pytest.approx(104.07)


def test_control_characters_are_removed_on_read_and_reported(tmp_path):
    path = tmp_path / "controls.csv"
    path.write_text(_csv([["name", "tier", "lon", "lat"],
                          ["社区\x1b[31m中心", "station", 104.07, 30.67],
                          ["ok", "station", 104.07, 30.67],
                          ['"two\nlines\tand\x00nul"', "station", 104.07, 30.67]]), encoding="utf-8")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fac = read_facilities(path)
    notes = [str(w.message) for w in caught if "control characters" in str(w.message)]
    assert len(notes) == 1
    assert str(path) in notes[0]
    assert "column 'name' rows 2, 4" in notes[0]
    assert "2 cell(s)" in notes[0]
    assert list(fac["name"]) == ["社区[31m中心", "ok", "two\nlines\tandnul"]  # tab, newline kept
    wb = openpyxl.Workbook()  # which raised IllegalCharacterError on the raw names
    for name in fac["name"]:
        wb.active.append([name])
    wb.save(tmp_path / "names.xlsx")


def test_text_cleaning_matches_a_cell_by_cell_pass():
    """Matched on distinct values only: the same cells as a plain loop over every cell, dtypes kept."""
    import re

    from circles.outputs.tables import clean_text

    rng = np.random.default_rng(0)
    n = 5_000
    df = pd.DataFrame({
        "tier": rng.choice(["district", "community", "station"], n),
        "name": pd.Series(rng.choice(["a\x01b", "=SUM(1)", "ok", None, "x\x1f"], n), dtype=object),
        "mixed": pd.Series([1, "a\x02", None, 2.5, True] * (n // 5), dtype=object),
        "text": pd.Series(rng.choice(["p", "q\x03", None], n), dtype="string"),
        "kind": pd.Categorical(rng.choice(["u\x04", "v"], n)),
        "pop": rng.integers(0, 9, n),
    })
    control = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
    out = clean_text(df)
    for col in df:
        want = [control.sub("", v) if isinstance(v, str) else v for v in df[col]]
        got = list(out[col])
        assert all(w is g or w == g or (pd.isna(w) and pd.isna(g)) for w, g in zip(want, got, strict=True)), col
    assert out["text"].dtype == df["text"].dtype
    assert out["pop"].dtype == df["pop"].dtype
