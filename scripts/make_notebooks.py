"""Write the three teaching notebooks (outputs stripped) from the cells below.

    python scripts/make_notebooks.py

Edit the cells here, not the .ipynb files, so the notebooks stay reviewable as code.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parent.parent
SETUP = """from datetime import datetime
from pathlib import Path
import circles

DATA = Path(circles.__file__).resolve().parent.parent / "data"
# Each run of this notebook writes into a folder of its own: a run never overwrites an earlier one.
OUT = Path("notebook-output") / datetime.now().strftime("%Y%m%d-%H%M%S-%f")
OUT.mkdir(parents=True)"""

NB1 = [
    new_markdown_cell("""# 01 · Coverage audit of the 15-minute life circle (十五分钟生活圈)

Who lives within a 15-minute walk of a district-level complex (片区级), 10 minutes of a
community-level complex (社区级) and 5 minutes of a station (驿站级) — on the real street network of
central Chengdu, not with straight-line buffers."""),
    new_code_cell(SETUP),
    new_markdown_cell("""## 1. The walking network
Read the embedded OpenStreetMap extract offline. The walking filter keeps every street a
pedestrian may use (OSM in Chinese cities maps few sidewalks, so centre lines carry the walking)
and only the largest connected part is kept."""),
    new_code_cell("""net = circles.load_network(DATA / "chengdu.osm.pbf")
net.summary()"""),
    new_markdown_cell("""## 2. Profile and facilities
The `deyang` profile: 片区级 15 min, 社区级 10 min, 驿站级 5 min at 4.5 km/h, nested (a district
complex also serves as a community complex and a station). The sample facilities are
illustrative."""),
    new_code_cell("""profile = circles.get_profile("deyang")
facilities = circles.read_facilities(DATA / "chengdu_facilities.csv", profile=profile, network=net)
facilities[["facility_id", "name", "tier", "tier_name", "floor_area_m2", "status"]].head()"""),
    new_markdown_cell("""## 3. Population (an estimate)
There is no population layer for Chengdu here, so it is estimated from OSM residential
buildings and land use — and labelled an estimate everywhere it appears."""),
    new_code_cell("""population = circles.estimate_from_osm(DATA / "chengdu.osm.pbf")
print(population.label)
round(population.input_pop)"""),
    new_markdown_cell("""## 4. Coverage per tier
Every person is counted once per tier: covered, uncovered, off-network (beyond the snap cap from
any street) or outside the study area; the four add up to the population."""),
    new_code_cell("""result = circles.compute_coverage(net, facilities, population, profile=profile)
table = result.by_tier()
table"""),
    new_code_cell("""parts = table[["covered_pop", "uncovered_pop", "offnetwork_pop", "outside_pop"]].sum(axis=1)
assert (abs(parts - table["population"]) < 1e-6).all()"""),
    new_markdown_cell("## 5. The largest gaps (H3 hexagons) and the map"),
    new_code_cell("""gaps = circles.gap_hexagons(result)
gaps[gaps.tier == "station"].head(10)[["h3", "uncovered_pop", "mean_minutes"]]"""),
    new_code_cell("""areas = circles.isochrone_layers(net, result.facilities, profile)
m = circles.result_map(result, isochrones=areas, gaps=gaps)
m"""),
    new_code_cell("""from circles.outputs.figures import coverage_figure
run = circles.coverage_run(circles.RunInputs(), OUT / "audit-run")
coverage_figure(run.folder, OUT / "01_coverage.png", lang="en")"""),
]

NB2 = [
    new_markdown_cell("""# 02 · Site selection: where should the next stations (驿站) go?

Existing complexes stay; new stations should cover the most people who are not yet within
5 minutes of one. Maximal covering, solved greedily (fast, with a proven bound) and exactly."""),
    new_code_cell(SETUP),
    new_code_cell("""run = circles.coverage_run(circles.RunInputs(), OUT / "siting-run")
run.result.by_tier()[["tier", "covered_pop", "covered_share"]]"""),
    new_markdown_cell("## 1. Five new stations: greedy and exact"),
    new_code_cell("""greedy = circles.site_run(run, tier="station", new=5, write=False)
exact = circles.site_run(run, tier="station", new=5, exact=True, time_limit_s=30, write=False)
print(greedy["solver"].iloc[0])
print(exact["solver"].iloc[0])
greedy[["rank", "lon", "lat", "new_covered_pop", "cumulative_covered_share", "nearest_existing_minutes"]]"""),
    new_code_cell("""assert exact["new_covered_pop"].sum() >= greedy["new_covered_pop"].sum() - 1e-6"""),
    new_markdown_cell("""## 2. Before and after
The proposals are added as facilities and coverage is computed again on the network: the
station tier gains exactly the people the solver reported."""),
    new_code_cell("""greedy.attrs["scenario"]"""),
    new_code_cell("""m = circles.result_map(run.result, isochrones=run.extras["isochrones"], gaps=run.extras["gaps"],
                      proposals=greedy)
m"""),
    new_markdown_cell("## 3. A second scenario: the fewest stations for 25% station coverage"),
    new_code_cell("""target = circles.site_run(run, tier="station", target=0.25, write=False)
print(len(target), "stations;", target.attrs["explanation"] or "target reached")
target[["rank", "new_covered_pop", "cumulative_covered_share"]].tail(3)"""),
    new_markdown_cell("""## 4. Export for the city's GIS and for Amap (GCJ-02)"""),
    new_code_cell("""greedy.to_file(OUT / "proposals.gpkg", layer="proposals")
greedy[["rank", "gcj02_lon", "gcj02_lat", "new_covered_pop"]].to_csv(OUT / "proposals_gcj02.csv", index=False)
from circles.outputs.figures import coverage_figure
circles.site_run(run, tier="station", new=5)
coverage_figure(run.folder, OUT / "02_proposals.png", lang="en")"""),
]

NB3 = [
    new_markdown_cell("""# 03 · Bring your own city

Change the three lines of the next cell (papermill-style parameters): your OSM extract, your
population (a raster, polygons or points with counts; `None` estimates from OSM) and your facility
table (`None` takes facilities from OSM tags)."""),
    new_code_cell("""OSM_PATH = None            # e.g. "my_city.osm.pbf"; None: the embedded Andorra extract
POPULATION = None          # e.g. "worldpop.tif" or "communities.gpkg"
FACILITIES = None          # e.g. "complexes.xlsx"; None: from OSM tags""", metadata={"tags": ["parameters"]}),
    new_code_cell(SETUP + """
OSM_PATH = OSM_PATH or DATA / "andorra.osm.pbf"
profile = circles.get_profile("deyang")
net = circles.load_network(OSM_PATH)
net.summary()"""),
    new_code_cell("""if FACILITIES:
    facilities = circles.read_facilities(FACILITIES, profile=profile, network=net)
else:
    from circles import attach
    facilities = attach(circles.from_osm(OSM_PATH, profile), net, profile)
facilities.groupby("tier").size()"""),
    new_code_cell("""population = (circles.read_population(POPULATION, network=net, profile=profile) if POPULATION
              else circles.estimate_from_osm(OSM_PATH))
result = circles.compute_coverage(net, facilities, population, profile=profile)
result.by_tier()"""),
    new_code_cell("""gaps = circles.gap_hexagons(result)
areas = circles.isochrone_layers(net, result.facilities, profile)
circles.result_map(result, isochrones=areas, gaps=gaps, lang="en")"""),
    new_code_cell("""import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
ax = gaps[gaps.tier == "station"].to_crs(3857).plot(column="uncovered_pop", cmap="Reds", figsize=(7, 7))
ax.set_axis_off(); ax.set_title("People beyond 5 minutes of a station")
plt.savefig(OUT / "03_gaps.png", dpi=90, bbox_inches="tight")"""),
]


def main() -> None:
    out = ROOT / "notebooks"
    out.mkdir(exist_ok=True)
    for name, cells in (("01_coverage_audit", NB1), ("02_site_selection", NB2),
                        ("03_bring_your_own_city", NB3)):
        nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                "language": "python"}})
        nbformat.write(nb, out / f"{name}.ipynb")
        print(f"notebooks/{name}.ipynb")


if __name__ == "__main__":
    main()
