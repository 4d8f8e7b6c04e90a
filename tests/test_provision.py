"""Provision under capacity: the solver against hand-worked optima and HiGHS, and the per-tier
account on Chengdu."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from scipy.optimize import linprog

import circles
from circles.engine.capacity import complex_capacity, floor_area_for, people_for_floor_area
from circles.engine.provision import Provision
from circles.engine.provision_tiers import provision
from circles.errors import DataError, ValidationError


def _matrix(rows: list[list[float | None]]) -> sparse.csr_matrix:
    """Sites × demand metres from a table where ``None`` is out of reach."""
    a = np.array([[np.nan if v is None else v for v in r] for r in rows], float)
    r, c = np.nonzero(np.isfinite(a))
    return sparse.csr_matrix((a[r, c], (r, c)), shape=a.shape)


def test_nearest_overloads_a_complex_while_a_farther_one_has_room():
    # p1 is 100 m from A and 600 m from B; p2 reaches only A. Nearest assignment sends 200 people
    # to A (room for 100) and serves 100; the optimum sends p1 to B and serves all 200.
    m = Provision.from_cost_matrix(_matrix([[100, 200], [600, None]]), [100, 100], [100, 100]).solve()
    assert m.served_pop == pytest.approx(200)
    assert m.walk_person_metres == pytest.approx(100 * 200 + 100 * 600)
    assert m.assigned.tolist() == pytest.approx([100, 100])
    assert m.provider().tolist() == [1, 0]


def test_a_point_is_split_between_complexes():
    m = Provision.from_cost_matrix(_matrix([[100], [300]]), [150], [100, 100]).solve()
    assert m.served_pop == pytest.approx(150)
    assert m.flows.toarray().ravel().tolist() == pytest.approx([100, 50])
    assert m.walk_person_metres == pytest.approx(100 * 100 + 50 * 300)


def test_least_walk_among_maximal_assignments():
    # Both assignments serve 200; crossing walks 100·500 + 100·400 more than the straight one.
    m = Provision.from_cost_matrix(_matrix([[100, 400], [500, 100]]), [100, 100], [100, 100]).solve()
    assert m.served_pop == pytest.approx(200)
    assert m.walk_person_metres == pytest.approx(100 * 100 + 100 * 100)


def test_unlimited_complexes_serve_everyone_in_reach_at_the_nearest():
    rng = np.random.default_rng(4)
    a = np.where(rng.random((6, 30)) < 0.3, rng.uniform(10, 900, (6, 30)), np.nan)
    m = Provision.from_cost_matrix(_matrix(a.tolist()), np.full(30, 7.0), np.inf).solve()
    reach = np.isfinite(a).any(axis=0)
    assert m.served_pop == pytest.approx(7.0 * reach.sum())
    brute = np.nansum(np.where(reach, np.nanmin(np.where(np.isfinite(a), a, np.inf), axis=0), 0.0)) * 7.0
    assert m.walk_person_metres == pytest.approx(brute)


def _highs(matrix: sparse.csr_matrix, pop: np.ndarray, cap: np.ndarray) -> tuple[float, float]:
    """The same model as two LPs in HiGHS: the most served, then the least walk at that."""
    coo = matrix.tocoo()
    n, ns, nd = coo.nnz, matrix.shape[0], matrix.shape[1]
    a = sparse.vstack([sparse.csr_matrix((np.ones(n), (coo.row, np.arange(n))), shape=(ns, n)),
                       sparse.csr_matrix((np.ones(n), (coo.col, np.arange(n))), shape=(nd, n))])
    b = np.concatenate([np.where(np.isfinite(cap), cap, 1e12), pop])
    served = -linprog(-np.ones(n), A_ub=a, b_ub=b, method="highs").fun
    walk = linprog(coo.data, A_ub=sparse.vstack([a, -sparse.csr_matrix(np.ones((1, n)))]),
                   b_ub=np.concatenate([b, [-(served - 1e-7)]]), method="highs").fun
    return served, walk


@pytest.mark.parametrize("seed", range(12))
def test_equals_highs_on_random_instances(seed):
    rng = np.random.default_rng(seed)
    ns, nd = int(rng.integers(2, 15)), int(rng.integers(5, 60))
    a = np.where(rng.random((ns, nd)) < rng.uniform(0.1, 0.6), rng.uniform(1, 1200, (ns, nd)), np.nan)
    if not np.isfinite(a).any():
        a[0, 0] = 50.0
    # Whole hundredths of a person, so the solver's unit is exact and only walks are rounded.
    pop = np.round(rng.gamma(2.0, 20.0, nd), 2)
    cap = np.round(rng.uniform(0, 150, ns), 2)
    cap[rng.random(ns) < 0.25] = np.inf
    matrix = _matrix(a.tolist())
    m = Provision.from_cost_matrix(matrix, pop, cap).solve()
    served, walk = _highs(matrix, pop, cap)
    assert m.served_pop == pytest.approx(served, abs=1e-6)
    # Walks are solved in decimetres: at most 0.05 m off per person served.
    assert abs(m.walk_person_metres - walk) <= 0.05 * served + 1e-6
    assert (m.assigned <= cap + 1e-9).all()
    assert (m.served <= pop + 1e-9).all()


def test_bad_inputs_are_named():
    with pytest.raises(DataError, match="pop"):
        Provision.from_cost_matrix(_matrix([[1.0]]), [-1], [5])
    with pytest.raises(DataError, match="capacity"):
        Provision.from_cost_matrix(_matrix([[1.0]]), [1], [np.nan])
    with pytest.raises(DataError, match="2 populations for 1"):
        Provision.from_cost_matrix(_matrix([[1.0]]), [1, 2], [5])


def test_capacity_sources_in_order():
    fac = pd.DataFrame({"capacity_pop": [500, np.nan, np.nan, np.nan],
                        "households_capacity": [100, 100, np.nan, np.nan],
                        "floor_area_m2": [300, 300, 300, np.nan]})
    profile = circles.get_profile("baoji")
    cap, source = complex_capacity(fac, profile)
    # 300 m² at 30 m² per 100 households of 2.62 persons: 1,000 households, 2,620 people.
    assert cap.tolist() == pytest.approx([500, 262, 2620, np.inf])
    assert source.tolist() == ["capacity_pop", "households_capacity", "floor_area_m2", "unlimited"]
    assert float(people_for_floor_area(300, profile)) == pytest.approx(2620)
    assert float(floor_area_for(2620, profile)) == pytest.approx(300)


def test_capacity_column_is_read_and_a_bad_figure_is_named(tmp_path):
    path = tmp_path / "fac.csv"
    path.write_text("名称,级别,经度,纬度,服务人口\nA,社区级,104.07,30.66,1200\nB,驿站级,104.08,30.67,约300\n",
                    encoding="utf-8")
    with pytest.raises(ValidationError) as err:
        circles.read_facilities(path)
    text = str(err.value)
    for said in ("row 3", "服务人口", "约300", "people"):
        assert said in text
    path.write_text("名称,级别,经度,纬度,服务人口\nA,社区级,104.07,30.66,1200\n", encoding="utf-8")
    assert circles.read_facilities(path)["capacity_pop"].tolist() == [1200.0]


@pytest.fixture(scope="module")
def chengdu_tight(chengdu_net, data_dir):
    """Chengdu's sample complexes, each able to serve 400 people only."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        profile = circles.get_profile("deyang")
        fac = circles.read_facilities(data_dir / "chengdu_facilities.csv", profile=profile)
        fac["capacity_pop"] = 400.0
        pop = circles.estimate_from_osm(data_dir / "chengdu.osm.pbf")
        result = circles.compute_coverage(chengdu_net, fac, pop, profile=profile,
                                          units=gpd.read_file(data_dir / "chengdu_communities.gpkg"))
        return result, provision(result)


def test_chengdu_conserves_people_and_agrees_with_coverage(chengdu_tight):
    result, prov = chengdu_tight
    cov = result.by_tier().set_index("tier")
    tab = prov.by_tier().set_index("tier")
    parts = ["served_pop", "covered_unserved_pop", "uncovered_pop", "offnetwork_pop", "outside_pop"]
    assert np.allclose(tab[parts].sum(axis=1), cov["population"])
    assert np.allclose(tab["served_pop"] + tab["covered_unserved_pop"], cov["covered_pop"])
    assert np.allclose(tab[["uncovered_pop", "offnetwork_pop", "outside_pop"]],
                       cov[["uncovered_pop", "offnetwork_pop", "outside_pop"]])
    assert (tab["covered_unserved_pop"] > 0).all()  # 400 people a complex is short everywhere
    # Served is at most the capacities in reach, and no complex takes more than 400.
    assert (tab["served_pop"] <= tab["facilities"] * 400 + 1e-6).all()
    for tier in tab.index:
        assert prov.assigned[tier].max() <= 400 + 1e-9
    units = prov.by_unit()
    for (_level, tier), rows in units.groupby(["level", "tier"]):
        assert rows["served_pop"].sum() == pytest.approx(tab.loc[tier, "served_pop"])
        assert rows["population"].sum() == pytest.approx(tab.loc[tier, "population"])


def test_chengdu_added_capacity_serves_everyone_in_reach(chengdu_tight):
    result, prov = chengdu_tight
    tab = prov.by_tier().set_index("tier")
    for tier in tab.index:
        # The least added room equals the people left out (each added place serves one at most).
        assert prov.extra_pop[tier].sum() == pytest.approx(tab.loc[tier, "covered_unserved_pop"])
    station = "station"
    more = prov.capacity_pop + prov.extra_pop[station]
    again = provision(result, capacity_pop=more).by_tier().set_index("tier")
    n_points = len(result.demand)
    # Every station-tier point within reach is served, to the solver's hundredth of a person.
    assert again.loc[station, "covered_unserved_pop"] <= 0.01 * n_points
    assert again.loc[station, "served_pop"] >= tab.loc[station, "served_pop"]
    complexes = prov.by_complex()
    short = complexes[(complexes["tier"] == station) & (complexes["extra_capacity_pop"] > 0)]
    assert (short["extra_floor_area_m2"] > 0).all()


def test_chengdu_demand_points_carry_their_share_and_complex(chengdu_tight):
    result, prov = chengdu_tight
    cols = prov.demand_columns()
    pop = result.demand["pop"].to_numpy(float)
    for tier in ("district", "community", "station"):
        served = cols[f"{tier}_served_pop"].to_numpy()
        assert served.sum() == pytest.approx(prov.by_tier().set_index("tier").loc[tier, "served_pop"], abs=0.01 * len(pop))
        assert (served <= pop + 0.01).all()
        # A point served at all names a complex that serves its tier; one not served names none.
        who = cols[f"{tier}_provider"].to_numpy()
        eligible = set(result.facilities.loc[result.facilities["tier"].isin(result.profile.eligible(tier)),
                                             "facility_id"].astype(str))
        assert set(who[served > 0]) <= eligible
        assert (who[served == 0] == "").all()
