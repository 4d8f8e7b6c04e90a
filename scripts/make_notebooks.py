"""Write the teaching notebooks (outputs stripped) from the cells below.

    python scripts/make_notebooks.py          # all of them
    python scripts/make_notebooks.py 04       # only notebooks whose name starts with 04

Edit the cells here, not the .ipynb files, so the notebooks stay reviewable as code. A cell keeps the
id it has in the notebook already written (same position, same kind), so regenerating changes only
the cells whose text changed.
"""

from __future__ import annotations

import sys
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

NB4 = [
    new_markdown_cell("""# 04 · Community scorecard (社区达标评估)

The rules planners are held to are set per community (社区), and they come from city documents:
office and service space per 100 households (每百户), a public-benefit kindergarten (普惠性幼儿园) in
every community of 1,500 households or more, community workers (社区工作者) per 10,000 residents,
general social workers (全科社工) per community. This notebook checks each rule community by community
on the embedded Chengdu data, with the document and the quote every rule comes from.

**The communities are illustrative.** `data/chengdu_communities.gpkg` holds six sample communities
(示例一社区…示例六社区) drawn as a 3 × 2 grid over the extract, with made-up households (户数) and workers
(社区工作者). They are not Chengdu's real 社区 boundaries or figures; the facilities are sample
complexes too, and the population is estimated from OSM buildings."""),
    new_code_cell(SETUP + """
import geopandas as gpd
import pandas as pd

pd.set_option("display.max_colwidth", 90)  # the notes name the missing column: keep them readable
""" + '\nCOMMUNITIES = DATA / "chengdu_communities.gpkg"'),
    new_markdown_cell("""## 1. The sample communities (示例社区)
A name column (社区) and the figures a rule may need. 示例四社区 has no 户数 and no 社区工作者: its
households are then estimated from the population inside it (÷ the profile's persons per household),
and the scorecard says where each community's households came from."""),
    new_code_cell("""communities = gpd.read_file(COMMUNITIES)
communities.drop(columns="geometry")"""),
    new_markdown_cell("""## 2. The rules and their sources (宝鸡)
The `baoji` profile carries the rules of the Baoji document, each with its threshold and a
verbatim quote, so every pass or fail in the scorecard can be traced to a sentence."""),
    new_code_cell("""profile = circles.get_profile("baoji")
rules = pd.DataFrame([{"code": r.code, "threshold": r.threshold, "unit_of_measure": r.unit_of_measure,
                       "document": r.document, "quote": r.quote} for r in profile.rules])
rules"""),
    new_markdown_cell("""## 3. A coverage run with the communities
The same run as `circles coverage --profile baoji --units chengdu_communities.gpkg`: coverage per
tier on the street network, and, because units are given, every rule evaluated per community.
Each run writes a folder of its own."""),
    new_code_cell("""run = circles.coverage_run(circles.RunInputs(profile="baoji", units=COMMUNITIES), OUT / "baoji-run")
sorted(p.name for p in run.folder.glob("*.csv"))"""),
    new_markdown_cell("""## 4. The scorecard, worst first
`scorecard.csv` has one row per community: population, households (and where they came from), the
covered share per tier, how many rules were evaluated and failed, and which. A community with no
rule the data can answer has no verdict (`all_passed` empty), rather than a pass. The sample
facilities include no kindergarten or primary school (the warnings above say so), so every community
large enough to need one fails that rule."""),
    new_code_cell("""card = pd.read_csv(run.folder / "scorecard.csv")
print(int(card["all_passed"].eq(True).sum()), "of", len(card), "communities meet every rule evaluated")
card[["unit", "population", "households", "households_source", "covered_share_community",
      "rules_evaluated", "rules_failed", "failed", "all_passed"]]"""),
    new_code_cell("""assert card["rules_failed"].is_monotonic_decreasing  # worst first"""),
    new_markdown_cell("""## 5. Rule by rule
`standards_by_unit.csv` has one row per community and rule: the figure, the threshold, pass or fail
and the source. The failures of the worst communities:"""),
    new_code_cell("""rows = pd.read_csv(run.folder / "standards_by_unit.csv")
worst = card["unit"].head(2)
rows[rows["unit"].isin(worst) & rows["passed"].eq(False)][
    ["unit", "rule", "value", "threshold", "unit_of_measure", "note"]]"""),
    new_markdown_cell("""## 6. What the data cannot answer
A rule whose figure the communities layer does not carry is never passed by default: it is listed
as "not evaluated: needs column …", so the planner knows which column to add."""),
    new_code_cell("""needs = rows[rows["note"].str.startswith("not evaluated", na=False)]
needs.groupby(["rule", "note"])["unit"].apply(", ".join).reset_index()"""),
    new_markdown_cell("""## 7. Adding a column: 全科社工 under `weinan`
The Weinan document asks for at least 3 general social workers (全科社工) per community. The sample
communities have no such column, so under the `weinan` profile the rule is not evaluated."""),
    new_code_cell("""weinan = circles.get_profile("weinan")
pd.DataFrame([{"code": r.code, "threshold": r.threshold, "quote": r.quote} for r in weinan.rules])"""),
    new_code_cell("""before = circles.coverage_run(circles.RunInputs(profile="weinan", units=COMMUNITIES), OUT / "weinan-run")
rule = "general_social_workers_min"
by_unit = pd.read_csv(before.folder / "standards_by_unit.csv")
by_unit[by_unit["rule"] == rule][["unit", "value", "threshold", "passed", "note"]]"""),
    new_markdown_cell("""Add the column with geopandas (the figures below are made up, like the rest of the sample), save
the layer as a new GeoPackage in this notebook's own output folder and run again."""),
    new_code_cell("""with_workers = communities.copy()
with_workers["全科社工"] = [4, 3, 1, None, 5, 2]  # made up, like 户数 and 社区工作者
units_path = OUT / "communities_with_workers.gpkg"
with_workers.to_file(units_path)
after = circles.coverage_run(circles.RunInputs(profile="weinan", units=units_path), OUT / "weinan-with-workers")
by_unit = pd.read_csv(after.folder / "standards_by_unit.csv")
by_unit[by_unit["rule"] == rule][["unit", "value", "threshold", "passed", "note"]]"""),
    new_code_cell("""pd.read_csv(after.folder / "scorecard.csv")[["unit", "rules_evaluated", "rules_failed", "failed",
                                                  "all_passed"]]"""),
    new_markdown_cell("""## 8. With your own communities
These six are sample communities, not Chengdu's real 社区, and the verdicts above say nothing about
the city. With a real layer (a name column such as 社区, and 户数, 常住人口, 社区工作者, 全科社工 where
known) the same run is one command:

```
circles coverage --profile baoji --units communities.gpkg --out runs/baoji
```"""),
]


NOTEBOOKS = (("01_coverage_audit", NB1), ("02_site_selection", NB2), ("03_bring_your_own_city", NB3),
             ("04_community_scorecard", NB4))


def _keep_ids(nb, path: Path) -> None:
    """Give each cell the id it has in the notebook already at ``path`` (same position, same kind):
    new_*_cell draws random ids, which would make every regeneration a diff of every cell."""
    if not path.exists():
        return
    old = nbformat.read(path, as_version=4).cells
    for cell, before in zip(nb.cells, old, strict=False):
        if cell.cell_type == before.cell_type and "id" in before:
            cell.id = before.id


def main() -> None:
    out = ROOT / "notebooks"
    out.mkdir(exist_ok=True)
    wanted = sys.argv[1:]
    for name, cells in NOTEBOOKS:
        if wanted and not any(name.startswith(w) for w in wanted):
            continue
        nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                "language": "python"}})
        _keep_ids(nb, out / f"{name}.ipynb")
        nbformat.write(nb, out / f"{name}.ipynb")
        print(f"notebooks/{name}.ipynb")


if __name__ == "__main__":
    main()
