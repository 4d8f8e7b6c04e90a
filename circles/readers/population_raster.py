"""Population rasters (WorldPop, GHS-POP, a city's grid) turned into demand points.

Only the window around the study area is read; each populated cell becomes its centre point, or a
regular sub-grid of points sharing its people when the cell is larger than ``max_cell_metres``.
Nodata cells are ignored; NaN and negative cells are reported in ``excluded``; people read in the
window but outside the study area are excluded as "outside the study area".
"""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from ..errors import DataError, InputFileError
from .crs import to_wgs84
from .demand import Demand, area_wgs84, make_demand

__all__ = ["from_raster"]

_MAX_RASTER_CELLS = 200_000_000  # 800 MB of float32: read a window instead


def _window(src, bounds) -> tuple[int, int, int, int] | None:
    """(row0, row1, col0, col1) of the cells meeting ``bounds`` (in the raster's CRS), or None."""
    left, bottom, right, top = bounds
    inv = ~src.transform
    cols, rows = zip(*(inv @ (x, y) for x, y in ((left, top), (right, top), (right, bottom), (left, bottom))),
                     strict=True)
    c0, c1 = max(int(np.floor(min(cols))), 0), min(int(np.ceil(max(cols))), src.width)
    r0, r1 = max(int(np.floor(min(rows))), 0), min(int(np.ceil(max(rows))), src.height)
    return (r0, r1, c0, c1) if c0 < c1 and r0 < r1 else None


def _negative(negative: np.ndarray, values: np.ndarray, origin: tuple[int, int], t, crs, path, band: int, *,
              drop_invalid: bool) -> dict:
    """Negative cells that are not nodata: an error naming the first, or a counted exclusion."""
    n = int(negative.sum())
    if drop_invalid:
        return {"reason": "cells with a negative value (dropped with --drop-invalid)", "pop": 0.0,
                "rows": f"{n} cells", "n": n}
    r, c = (int(v[0]) for v in np.nonzero(negative))
    x, y = t @ (origin[1] + c + 0.5, origin[0] + r + 0.5)
    lon, lat = to_wgs84(np.array([x]), np.array([y]), crs)
    raise DataError(f"{n:,} cell{'s hold' if n > 1 else ' holds'} a negative count, not people; the first, row "
                    f"{origin[0] + r + 1}, column {origin[1] + c + 1} (lon {lon[0]:.5f}, lat {lat[0]:.5f}), "
                    f"holds {values[r, c]:g}", file=path, field=f"band {band}",
                    fix="correct the cells, set the raster's nodata value if they mean no data, or pass "
                        "--drop-invalid (drop_invalid=True) to exclude such cells and count them")


def _on_housing(rows: np.ndarray, cols: np.ndarray, pop: np.ndarray, t, crs, residential, area):
    """Large cells as polygons spread over their residential parts: (lon, lat, pop, notes, counts)."""
    from .population_residential import read_residential, spread, spread_note

    res = read_residential(residential, area=area)
    corner = np.array([(0, 0), (1, 0), (1, 1), (0, 1)])
    cc, rr = cols[:, None] + corner[None, :, 0], rows[:, None] + corner[None, :, 1]
    cells = gpd.GeoSeries(shapely.polygons(np.stack([t.a * cc + t.b * rr + t.c, t.d * cc + t.e * rr + t.f],
                                                    axis=-1)), crs=crs)
    local = cells.estimate_utm_crs()
    owner, x, y, share, method = spread(cells.to_crs(local).to_numpy(), res.to_crs(local), 50.0)
    lon, lat = to_wgs84(x, y, local)
    counts, note = spread_note(method, "raster cells", layer=True)
    return lon, lat, pop[owner] * share, [note], {"spread": counts}


def from_raster(path: str | Path, *, area=None, max_cell_metres: float = 100.0, band: int = 1,
                drop_invalid: bool = False, residential=None) -> Demand:
    """A population raster read over the study area: a point per cell, more for large cells.

    Parameters
    ----------
    path
        A GeoTIFF (WorldPop, GHS-POP, a city's grid) of people per cell, in any CRS.
    area
        The study area (a shapely geometry in WGS-84, or a GeoSeries/GeoDataFrame): only the
        window around it is read, and people in that window but outside it are excluded
        ("outside the study area").
    max_cell_metres
        Cells wider or taller than this become a regular sub-grid of points sharing the
        cell's people equally.
    band
        The band holding the counts.
    drop_invalid
        Exclude negative cells (that are not the nodata value) and count them, instead of
        raising a :class:`DataError` naming the first.
    residential
        Residential buildings or land use (an OSM extract, a polygon file or a GeoDataFrame):
        cells larger than ``max_cell_metres`` then put their people on their residential
        buildings by floor area, else on residential land use, else evenly, as
        :func:`circles.population.from_polygons` does.

    Returns
    -------
    Demand

    """
    from rasterio.windows import Window

    path = Path(path)
    with _open(path) as src:
        if src.crs is None or src.transform.is_identity:
            raise DataError("the raster has no CRS or no georeferencing", file=path, field="crs",
                            fix="set it in a GIS program (WorldPop and GHS-POP ship with one)")
        area = area_wgs84(area)
        r0, r1, c0, c1 = _study_window(src, area, path)
        data = src.read(band, window=Window(c0, r0, c1 - c0, r1 - r0), masked=True).astype(float)
        t, crs = src.transform, src.crs
    pop, rows, cols, excl = _populated_cells(data, (r0, c0), t, crs, path, band, drop_invalid=drop_invalid)
    kx, ky = _subgrid(t, crs, rows, max_cell_metres)
    notes, counts = [], {}
    split = f", cells split {kx}×{ky}" if kx * ky > 1 else ""
    if kx * ky > 1 and residential is not None:
        # A 250 m census cell is mostly not housing: its people go where they live.
        lon, lat, sub_pop, notes, counts = _on_housing(rows, cols, pop, t, crs, residential, area)
        split = ", cells spread over residential parts"
    else:
        lon, lat, sub_pop = _cell_points(rows, cols, pop, t, crs, kx, ky)
    inside = _inside(area, lon, lat, sub_pop, path, excl)
    out = gpd.GeoDataFrame({"pop": sub_pop[inside], "source": f"raster: {path.name}"},
                           geometry=shapely.points(lon[inside], lat[inside]), crs=4326)
    return make_demand(out, float(pop.sum()), excl, f"raster {path.name}{split}", notes=notes, counts=counts)


def _open(path: Path):
    """The raster, open; a missing, empty or unreadable file is an :class:`InputFileError`."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    if not path.exists():
        raise InputFileError("the population raster does not exist", file=path, fix="check the path")
    if path.is_file() and path.stat().st_size == 0:
        raise InputFileError("the population raster is empty", file=path, fix="export it again")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)  # reported by the caller as an error
            return rasterio.open(path)
    except RasterioIOError as err:
        raise InputFileError(f"cannot read the raster ({err})", file=path,
                             fix="give a GeoTIFF; open it in a GIS program and export it again") from err


def _study_window(src, area, path: Path) -> tuple[int, int, int, int]:
    """(row0, row1, col0, col1) to read: the window around the study area, or the whole raster."""
    from rasterio.warp import transform_bounds

    if area is None:
        if src.width * src.height > _MAX_RASTER_CELLS:
            raise DataError(f"the raster has {src.width * src.height:,} cells: too many to read whole",
                            file=path, fix="pass area= (read_population takes it from the network)")
        return (0, src.height, 0, src.width)
    bounds = transform_bounds("EPSG:4326", src.crs, *shapely.bounds(area), densify_pts=21)
    win = _window(src, bounds)
    if win is None:
        rb = src.bounds
        raise DataError(f"the raster ({rb.left:.4g}, {rb.bottom:.4g}, {rb.right:.4g}, {rb.top:.4g} "
                        f"in {src.crs.to_string()}) does not overlap the study area", file=path,
                        fix="use a raster that covers the network's city")
    return win


def _populated_cells(data, origin: tuple[int, int], t, crs, path: Path, band: int, *, drop_invalid: bool):
    """The people, row and column of every cell holding people, and the cells excluded.

    Nodata cells are ignored; NaN cells are excluded; negative cells are an error, or excluded with
    ``drop_invalid``.
    """
    values = data.filled(np.nan)
    nodata = np.ma.getmaskarray(data)
    nan = ~nodata & ~np.isfinite(values)
    negative = ~nodata & np.isfinite(values) & (values < 0)
    excl = []
    if nan.any():
        excl.append({"reason": "NaN cells (no data, not counted)", "pop": 0.0, "rows": f"{int(nan.sum())} cells",
                     "n": int(nan.sum())})
    if negative.any():
        excl.append(_negative(negative, values, origin, t, crs, path, band, drop_invalid=drop_invalid))
    rows, cols = np.nonzero(~nodata & np.isfinite(values) & (values > 0))
    if not len(rows):
        raise DataError("the raster holds no people over the study area (every cell nodata, NaN, negative or 0)",
                        file=path, fix="check the raster covers the city and holds people per cell")
    return values[rows, cols], rows + origin[0], cols + origin[1], excl


def _subgrid(t, crs, rows: np.ndarray, max_cell_metres: float) -> tuple[int, int]:
    """Points across and down each cell: cells wider or taller than ``max_cell_metres`` split."""
    width_m, height_m = np.hypot(t.a, t.d), np.hypot(t.b, t.e)
    if crs.is_geographic:
        lat = t.f + t.e * (rows.mean() + 0.5)
        width_m, height_m = width_m * 111_320 * np.cos(np.radians(lat)), height_m * 110_574
    else:
        factor = crs.linear_units_factor[1] if crs.linear_units else 1.0
        width_m, height_m = width_m * factor, height_m * factor
    kx, ky = (max(1, int(np.ceil(s / max_cell_metres - 1e-9))) for s in (width_m, height_m))
    return kx, ky


def _cell_points(rows: np.ndarray, cols: np.ndarray, pop: np.ndarray, t, crs, kx: int, ky: int):
    """A regular ``kx`` × ``ky`` sub-grid of points in each cell sharing its people: (lon, lat, pop)."""
    ox, oy = np.meshgrid((np.arange(kx) + 0.5) / kx, (np.arange(ky) + 0.5) / ky)
    cc = (cols[:, None] + ox.ravel()[None, :]).ravel()
    rr = (rows[:, None] + oy.ravel()[None, :]).ravel()
    lon, lat = to_wgs84(t.a * cc + t.b * rr + t.c, t.d * cc + t.e * rr + t.f, crs)
    return lon, lat, np.repeat(pop / (kx * ky), kx * ky)


def _inside(area, lon: np.ndarray, lat: np.ndarray, pop: np.ndarray, path: Path, excl: list) -> np.ndarray:
    """Which points lie in the study area; the people outside it are added to ``excl``."""
    inside = np.ones(len(lon), dtype=bool)
    if area is None:
        return inside
    inside = shapely.contains_xy(area, lon, lat)
    if not inside.any():
        raise DataError("no populated cell of the raster lies in the study area", file=path,
                        fix="use a raster that covers the network's city")
    if not inside.all():
        excl.append({"reason": "outside the study area (read in the window around it)",
                     "pop": float(pop[~inside].sum()), "rows": f"{int((~inside).sum())} points",
                     "n": int((~inside).sum())})
    return inside
