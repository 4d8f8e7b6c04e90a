"""Provision under capacity: who is served once each complex can take only so many people.

The model (a transportation problem on the sparse site × demand arcs within the threshold)::

    maximise    sum_ij x_ij                       (people served)
    subject to  sum_j x_ij <= c_i                 (complex i's capacity)
                sum_i x_ij <= p_j                 (demand point j's people)
                x_ij >= 0, only where d_ij <= T   (within the tier's walk)

and among all assignments that serve that maximum, the one of least total walking
``sum_ij d_ij x_ij``. A demand point may be split between complexes.

It is solved exactly as a maximum flow of minimum cost (OR-Tools' cost-scaling min-cost-flow,
``solve_max_flow_with_min_cost``): on 100,000 points × 500 complexes it finds the maximum and the
least walking in 2.3 s, where HiGHS needs 31 s for the maximum alone and 22 s for both phases at
20,000 × 300 (``scripts/bench_provision.py``). People are
counted in whole hundredths (a point's people rounded up, a complex's capacity down; a point's
flows are then scaled to its exact people, so no complex takes more than its capacity and a
point served in all its hundredths is served whole) and walks in decimetres: the served total is
the maximum to within a hundredth of a person per demand point.

Two exact reductions keep the flow small: a complex whose reachable people fit in its capacity
can never be full, so it acts as unlimited; a demand point's arcs to capacity-limited complexes
no nearer than its nearest unlimited one are never needed (moving that flow to the unlimited one
walks no farther and frees room), and a point with no arcs left goes to that nearest one whole.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike
from scipy import sparse

from ..errors import DataError

__all__ = ["Provision"]

_UNITS_PER_PERSON = 100
_COST_PER_METRE = 10


@dataclass
class Provision:
    """The provision model of one tier, built with :meth:`from_cost_matrix`, then :meth:`solve`.

    Attributes
    ----------
    cost : scipy.sparse.csr_matrix
        Sites × demand walking metres; stored entries are the pairs within the threshold.
    pop : numpy.ndarray
        People at each demand point.
    capacity : numpy.ndarray
        People each site can serve (``inf``: unlimited).
    flows : scipy.sparse.csr_matrix
        After :meth:`solve`: people of each demand point served at each site.
    served : numpy.ndarray
        After :meth:`solve`: people served at each demand point.
    assigned : numpy.ndarray
        After :meth:`solve`: people each site serves.
    seconds : float
        Solve time.

    """

    cost: sparse.csr_matrix
    pop: np.ndarray
    capacity: np.ndarray
    flows: sparse.csr_matrix | None = None
    served: np.ndarray | None = None
    assigned: np.ndarray | None = None
    seconds: float = 0.0
    stats: dict = field(default_factory=dict)

    @classmethod
    def from_cost_matrix(cls, matrix: sparse.spmatrix, pop: ArrayLike, capacity: ArrayLike | float
                         ) -> Provision:
        """The model from a sites × demand metres matrix (stored entries: pairs within reach).

        Parameters
        ----------
        matrix
            Sites × demand; an exact zero should be stored as a tiny positive number.
        pop
            People per demand point (negative or NaN is an error).
        capacity
            People per site, or one figure for all; ``inf`` is unlimited.

        """
        cost = sparse.csr_matrix(matrix, dtype=np.float64)
        cost.sum_duplicates()
        p = np.asarray(pop, float).ravel()
        cap = np.broadcast_to(np.asarray(capacity, float), (cost.shape[0],)).copy()
        if len(p) != cost.shape[1]:
            raise DataError(f"{len(p)} populations for {cost.shape[1]} demand points", field="pop",
                            fix="give one population per column of the matrix")
        for name, v in (("pop", p), ("capacity", cap)):
            if np.isnan(v).any() or (v < 0).any():
                raise DataError(f"a {name} is negative or missing", field=name,
                                fix=f"give every {name} as a number of people >= 0")
        return cls(cost=cost, pop=p, capacity=cap)

    @property
    def reachable(self) -> np.ndarray:
        """Demand points within reach of at least one site."""
        return np.diff(self.cost.tocsc().indptr) > 0

    @property
    def served_pop(self) -> float:
        """People served."""
        return float(self.served.sum()) if self.served is not None else float("nan")

    @property
    def walk_person_metres(self) -> float:
        """Total walking of the people served (person-metres)."""
        if self.flows is None:
            return float("nan")
        return float(self.flows.multiply(self.cost).sum())

    def provider(self) -> np.ndarray:
        """Per demand point the site serving most of its people (-1: none)."""
        if self.flows is None:
            raise DataError("the provision model is not solved yet", fix="call .solve() first")
        f = self.flows.tocsc()
        out = np.full(f.shape[1], -1, dtype=np.int64)
        cols = np.repeat(np.arange(f.shape[1]), np.diff(f.indptr))
        order = np.lexsort((-f.data, cols))
        first = np.ones(len(order), dtype=bool)
        first[1:] = cols[order][1:] != cols[order][:-1]
        keep = order[first]
        keep = keep[f.data[keep] > 0]
        out[cols[keep]] = f.indices[keep]
        return out

    def solve(self) -> Provision:
        """Serve the most people, then walk the least; sets ``flows``, ``served``, ``assigned``."""
        import ortools.graph.python.min_cost_flow  # noqa: F401  (loaded before the clock starts)

        t0 = time.perf_counter()
        rows, cols, people = _solve(self.cost, self.pop, self.capacity, self.stats)
        self.flows = sparse.csr_matrix((people, (rows, cols)), shape=self.cost.shape)
        self.served = np.bincount(cols, weights=people, minlength=self.cost.shape[1])
        self.assigned = np.bincount(rows, weights=people, minlength=self.cost.shape[0])
        self.seconds = time.perf_counter() - t0
        return self


def _solve(cost: sparse.csr_matrix, pop: np.ndarray, cap: np.ndarray, stats: dict
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(site, demand, people) of every flow of the optimal assignment."""
    coo = cost.tocoo()
    r, c, d = coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data
    live = pop[c] > 0
    r, c, d = r[live], c[live], d[live]
    reach_pop = np.bincount(r, weights=pop[c], minlength=cost.shape[0])
    free = cap >= reach_pop  # never full: as good as unlimited
    best_d, best_site = _nearest_free(r, c, d, free, cost.shape[1])
    keep = ~free[r] & (d < best_d[c])
    lr, lc, ld = r[keep], c[keep], d[keep]
    has_limited = np.bincount(lc, minlength=cost.shape[1]) > 0
    whole = np.flatnonzero(np.isfinite(best_d) & ~has_limited)
    stats.update(arcs=len(r), flow_arcs=len(lr), free_sites=int(free.sum()),
                 whole_points=len(whole))
    fr, fc, fp = _flow(lr, lc, ld, pop, cap, best_d, best_site, has_limited)
    return (np.concatenate([best_site[whole], fr]), np.concatenate([whole, fc]),
            np.concatenate([pop[whole], fp]))


def _nearest_free(r: np.ndarray, c: np.ndarray, d: np.ndarray, free: np.ndarray, n_demand: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per demand point the walk to, and row of, its nearest never-full site (inf, -1: none)."""
    best_d = np.full(n_demand, np.inf)
    best_site = np.full(n_demand, -1, dtype=np.int64)
    f = free[r]
    fr, fc, fd = r[f], c[f], d[f]
    order = np.lexsort((fd, fc))
    first = np.ones(len(order), dtype=bool)
    first[1:] = fc[order][1:] != fc[order][:-1]
    pick = order[first]
    best_d[fc[pick]] = fd[pick]
    best_site[fc[pick]] = fr[pick]
    return best_d, best_site


def _flow(r: np.ndarray, c: np.ndarray, d: np.ndarray, pop: np.ndarray, cap: np.ndarray,
          best_d: np.ndarray, best_site: np.ndarray, has_limited: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The max flow of min cost over the limited arcs, with each point's nearest never-full site
    as one more way out; returns (site, demand, people)."""
    from ortools.graph.python import min_cost_flow

    points = np.flatnonzero(has_limited)
    if len(points) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    sites = np.unique(r)
    si = np.searchsorted(sites, r)
    pj = np.searchsorted(points, c)
    ns, nd = len(sites), len(points)
    # A point's people rounded up and a site's capacity down: a point served in all its units is
    # served whole, and scaling its flows down to its exact people keeps every site within capacity.
    units = np.ceil(pop[points] * _UNITS_PER_PERSON - 1e-6).astype(np.int64)
    cap_units = np.floor(cap[sites] * _UNITS_PER_PERSON + 1e-6).astype(np.int64)
    spare = np.isfinite(best_d[points])
    # Nodes: sites 0..ns-1, points ns.., then the never-full way out, the source and the sink.
    out_node, src, snk = ns + nd, ns + nd + 1, ns + nd + 2
    sp = np.flatnonzero(spare)
    tails = np.concatenate([np.full(ns, src), [src], si, np.full(len(sp), out_node), ns + np.arange(nd)])
    heads = np.concatenate([np.arange(ns), [out_node], ns + pj, ns + sp, np.full(nd, snk)])
    # Tight arc capacities (the smaller end) make the cost scaling several times faster.
    caps = np.concatenate([cap_units, [units[sp].sum()], np.minimum(cap_units[si], units[pj]),
                           units[sp], units])
    costs = np.concatenate([np.zeros(ns + 1, np.int64), np.round(d * _COST_PER_METRE).astype(np.int64),
                            np.round(best_d[points[sp]] * _COST_PER_METRE).astype(np.int64),
                            np.zeros(nd, np.int64)])
    mcf = min_cost_flow.SimpleMinCostFlow()
    mcf.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, costs)
    mcf.set_nodes_supplies(np.array([src, snk]), np.array([int(caps[: ns + 1].sum()), -int(units.sum())]))
    status = mcf.solve_max_flow_with_min_cost()
    if status != mcf.OPTIMAL:
        raise DataError(f"the provision flow did not solve ({status})", field="capacity",
                        fix="report this with the run folder; capacities and populations look unusual")
    a0 = ns + 1
    flows = mcf.flows(np.arange(a0, a0 + len(r) + len(sp)))
    fa, fb = flows[: len(r)], flows[len(r):]
    hit_a, hit_b = fa > 0, fb > 0
    got = np.bincount(pj, weights=fa, minlength=nd) + np.bincount(sp, weights=fb, minlength=nd)
    scale = np.minimum(1.0, pop[points] * _UNITS_PER_PERSON / np.maximum(got, 1))
    return (np.concatenate([r[hit_a], best_site[points[sp][hit_b]]]),
            np.concatenate([c[hit_a], points[sp][hit_b]]),
            np.concatenate([fa[hit_a] * scale[pj[hit_a]], fb[hit_b] * scale[sp[hit_b]]]) / _UNITS_PER_PERSON)
