"""Siting: new station sites that cover the most people left out (expansion planning).

Existing facilities stay fixed; only people not already covered count. Solvers are built from a
sparse candidate × demand coverage matrix (spopt style: ``from_cost_matrix(...)``, then
``.solve()``, results as attributes). The search itself is in :mod:`circles.engine.siting_search`.

Under provision (existing complexes with their capacities) the people a site can gain are the
unserved (:func:`unserved_pop`), and :func:`served_with_sites` re-solves provision with the new
sites added, to check what the siting claims.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike
from scipy import sparse

from ..errors import DataError
from .provision import Provision
from .routing import coverage_matrix
from .siting_models import covered_people, exact_start, fewest_sites, is_proven, milp_sites
from .siting_search import (
    SitingProblem,
    anytime_sites,
    greedy_sites,
    marginal_gains,
    rank_sites,
    swap_sites,
)

if TYPE_CHECKING:
    from .anchors import Anchors
    from .network import WalkNetwork
    from .provision_tiers import ProvisionResult

__all__ = ["CoverageTarget", "MaximalCovering", "candidate_nodes", "served_with_sites", "unserved_pop"]

# Provision counts people in whole hundredths: less than that left at a point is rounding.
_ROUNDING_POP = 0.01


def candidate_nodes(net: WalkNetwork, *, spacing_metres: float = 100.0,
                    exclude_xy: tuple[np.ndarray, np.ndarray] | None = None,
                    exclude_metres: float = 50.0) -> np.ndarray:
    """Network nodes thinned to about one per ``spacing_metres`` square, existing sites excluded.

    In each grid square the node nearest the square's centre is kept (vectorised: one sort).

    Parameters
    ----------
    net
        The walking network.
    spacing_metres
        The side of the grid squares.
    exclude_xy
        Existing sites (x and y in the network CRS); nodes near them are left out.
    exclude_metres
        How near to an existing site a node is left out.

    Returns
    -------
    numpy.ndarray
        Node indices.

    """
    gx = np.floor(net.x / spacing_metres).astype(np.int64)
    gy = np.floor(net.y / spacing_metres).astype(np.int64)
    d = np.hypot(net.x - (gx + 0.5) * spacing_metres, net.y - (gy + 0.5) * spacing_metres)
    order = np.lexsort((d, gy, gx))
    first = np.ones(len(order), dtype=bool)
    first[1:] = (gx[order][1:] != gx[order][:-1]) | (gy[order][1:] != gy[order][:-1])
    nodes = order[first]
    if exclude_xy is not None and len(exclude_xy[0]):
        from scipy.spatial import cKDTree

        tree = cKDTree(np.column_stack(exclude_xy))
        near = tree.query(np.column_stack([net.x[nodes], net.y[nodes]]), distance_upper_bound=exclude_metres)[0]
        nodes = nodes[~np.isfinite(near)]
    return np.sort(nodes)


def unserved_pop(provided: ProvisionResult, tier: str) -> np.ndarray:
    """People provision leaves unserved at each on-network demand point at ``tier``: within reach
    of a full complex, or of none (off-network and outside points: none).

    Parameters
    ----------
    provided
        Provision of the existing complexes (:func:`circles.engine.provision_tiers.provision`).
    tier
        The tier.

    Returns
    -------
    numpy.ndarray
        People per demand point; what rounding leaves (under a hundredth) counts as served.

    """
    demand = provided.coverage.demand
    ok = demand["status"].to_numpy() == "ok"
    left = np.where(ok, np.maximum(demand["pop"].to_numpy(float) - provided.served[tier], 0.0), 0.0)
    return np.where(left >= _ROUNDING_POP, left, 0.0)


def served_with_sites(provided: ProvisionResult, tier: str, sites: Anchors, capacity: ArrayLike, *,
                      ks: ArrayLike | None = None) -> np.ndarray:
    """People served at ``tier`` under provision with the existing complexes and the first k new sites.

    Each problem is solved exactly (:class:`circles.engine.provision.Provision`) on the existing
    complexes' rows, with their capacities, stacked with the first k sites' rows.

    Parameters
    ----------
    provided
        Provision of the existing complexes (its coverage gives the network, the demand and the
        facilities; its capacities hold).
    tier
        The tier solved (the new sites count for it).
    sites
        The new sites on the network, in rank order.
    capacity
        People each new site can serve (``inf``: unlimited).
    ks
        The numbers of sites to solve for (default ``0 .. len(sites)``; 0 is ``provided`` itself).

    Returns
    -------
    numpy.ndarray
        People served with the first k sites, for each k of ``ks``.

    """
    result = provided.coverage
    net, profile, fac = result.network, result.profile, result.facilities
    ks = np.arange(len(sites) + 1) if ks is None else np.asarray(ks, dtype=np.int64).reshape(-1)
    rows = np.flatnonzero((fac["status"] == "ok").to_numpy() & fac["tier"].isin(profile.eligible(tier)).to_numpy())
    limit = profile.threshold_metres(tier)
    old = coverage_matrix(net, result.facility_anchors.subset(rows), result.demand_anchors,
                          limit_metres=limit, dtype=np.float64)
    new = coverage_matrix(net, sites, result.demand_anchors, limit_metres=limit, dtype=np.float64)
    pop = np.where(result.demand["status"].to_numpy() == "ok", result.demand["pop"].to_numpy(float), 0.0)
    cap = np.concatenate([provided.capacity_pop[rows],
                          np.broadcast_to(np.asarray(capacity, float), (len(sites),))])
    served = np.full(len(ks), float(provided.served[tier].sum()))
    for i, k in enumerate(ks):  # one exact solve per number of sites, a handful in all
        if k > 0:
            stacked = sparse.vstack([old, new[:k]], format="csr")
            served[i] = Provision.from_cost_matrix(stacked, pop, cap[: len(rows) + k]).solve().served_pop
    return served


@dataclass
class MaximalCovering:
    """Maximal covering location problem (MCLP) for new sites.

    Choose ``p`` candidates maximising the people newly covered:

    .. math::

        \\max \\sum_i w_i y_i \\quad \\text{s.t.} \\quad y_i \\le \\sum_{j \\in N_i} x_j,\\;
        \\sum_j x_j = p,\\; x_j \\in \\{0, 1\\},\\; 0 \\le y_i \\le 1

    where :math:`w_i` are the people at demand point *i* not already covered and :math:`N_i` the
    candidates within the threshold of *i* (``y`` may be continuous: at an optimum it is 0/1).
    ``greedy`` is anytime: a lazy greedy (gains only shrink, so a stale heap top that is still
    the largest after re-evaluation is the true best; a (1 − 1/e) guarantee), then swap search
    and a Lagrangian bound in turns, stopping as soon as the answer meets the proven bound, or
    when its time budget is spent, with the gap stated. ``exact`` starts HiGHS (``highspy``,
    whose time limit holds) from the greedy answer, unless the bound already proves it, and
    reports the tightest bound it has (HiGHS's dual bound or the Lagrangian bound) and the gap.

    With ``capacity``, each site serves at most that many people (nearest first), so sites are
    not stacked in dense areas.

    Attributes
    ----------
    selected : numpy.ndarray
        Chosen candidate rows, in order of choice (greedy) or of gain (exact).
    gains : numpy.ndarray
        People newly covered by each selected site, in that order.
    objective : float
        People newly covered in all.
    upper_bound : float
        A proven upper bound on the optimum: the least of the Lagrangian bound (at best the LP
        relaxation's), HiGHS's dual bound (``exact``, and small models), everyone some candidate
        reaches and, under capacities, the ``p`` largest capacities; rounded down to a whole
        person (or hundredth) when the people come in whole ones (or hundredths).
    gap : float
        ``(upper_bound - objective) / upper_bound``.
    solver : str
    status : str
        ``"optimal"`` (proven: the answer meets the bound), ``"time limit reached"`` or, under
        capacities, ``"bound converged"``; HiGHS's status for ``exact``.
    seconds : float
    explanation : str
        Why fewer sites than asked were chosen, when they were.
    progress : list of tuple
        ``greedy``: ``(seconds, objective, bound)`` each time the answer or the bound improved.

    """

    problem: SitingProblem
    selected: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))
    gains: np.ndarray = field(default_factory=lambda: np.array([]))
    objective: float = 0.0
    upper_bound: float = np.nan
    gap: float = np.nan
    solver: str = ""
    status: str = "not solved"
    seconds: float = 0.0
    explanation: str = ""
    progress: list[tuple[float, float, float]] = field(default_factory=list)

    @classmethod
    def from_cost_matrix(cls, coverage: ArrayLike | sparse.spmatrix | sparse.sparray, weights: ArrayLike,
                         *, max_metres: float | None = None, already_covered: ArrayLike | None = None,
                         capacity: ArrayLike | None = None) -> MaximalCovering:
        """Build from a candidates × demand matrix.

        Parameters
        ----------
        coverage
            Candidates × demand, dense or SciPy sparse. Without ``max_metres`` it says who is
            covered: nonzero (dense) or stored (sparse) = within the threshold; stored values,
            if any, are metres, used to serve the nearest first under a capacity. With
            ``max_metres`` it is a distance matrix (as spopt's cost matrix, but candidates as
            rows): a distance ``<= max_metres`` is covered, 0 included. Dense: ``inf`` or NaN
            is unreachable. Sparse: every stored entry is a distance (an explicit 0 is a
            distance of 0, covered) and an absent entry is unreachable.
        weights
            People at each demand point.
        max_metres
            The coverage threshold of a distance matrix.
        already_covered
            Demand points covered before siting (they never count).
        capacity
            People a site can serve, one number or one per candidate.

        Returns
        -------
        MaximalCovering

        """
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        cov = _coverage(coverage, len(w), max_metres)
        total = float(w.sum())
        done = np.zeros(len(w), dtype=bool) if already_covered is None else np.asarray(already_covered, bool)
        cap = None
        if capacity is not None:
            cap = np.asarray(capacity, float)
            if cap.ndim and len(cap) != cov.shape[0]:
                raise DataError(f"{len(cap)} capacities for {cov.shape[0]} candidates", field="capacity",
                                fix="give one capacity, or one per candidate row")
            cap = np.broadcast_to(cap, (cov.shape[0],)).copy()
        return cls(problem=SitingProblem(cov, np.where(done, 0.0, w), cap, total, float(w[done].sum())))

    def evaluate(self, sites: np.ndarray) -> np.ndarray:
        """People each of ``sites`` (candidate rows) newly covers, taken in that order; under a
        capacity each serves the nearest people left, up to its capacity."""
        return marginal_gains(self.problem, np.asarray(sites, dtype=np.int64).reshape(-1))

    @property
    def covered_share(self) -> float:
        """Share of everyone covered after adding the selected sites."""
        p = self.problem
        return (p.already + self.objective) / p.total if p.total > 0 else np.nan

    def solve(self, p: int, *, method: str = "greedy", seconds: float = 2.0,
              time_limit_s: float = 60.0) -> MaximalCovering:
        """Choose ``p`` sites with ``greedy`` (anytime, within ``seconds``) or ``exact`` (HiGHS,
        within ``time_limit_s``); returns ``self``.

        ``greedy`` returns at once when the lazy greedy's answer meets the proven bound;
        otherwise it searches and tightens the bound until they meet or ``seconds`` have passed
        (``0``: the lazy greedy and its quick bound only). Sites that add nobody are never
        proposed: when fewer than ``p`` candidates add anyone, fewer are chosen and
        :attr:`explanation` says how many and why.
        """
        t0 = time.perf_counter()
        if isinstance(p, bool) or not float(p).is_integer() or p < 1:
            raise DataError(f"the number of new sites must be a whole number >= 1, not {p!r}", field="new",
                            fix="ask for at least one site, e.g. --new 5")
        wanted = int(p)
        p = int(min(wanted, self.problem.coverage.shape[0]))
        if method == "greedy":
            self._solve_greedy(p, seconds, t0)
        elif method == "exact":
            self._solve_exact(p, time_limit_s)
        else:
            raise DataError(f"unknown method {method!r}", fix="use 'greedy' or 'exact'")
        self.objective = float(self.gains.sum())
        if np.isfinite(self.upper_bound) and self.upper_bound > 0:
            self.upper_bound = max(self.upper_bound, self.objective)  # a bound below the answer is rounding
            self.gap = max(0.0, (self.upper_bound - self.objective) / self.upper_bound)
        elif self.upper_bound == 0:
            self.gap = 0.0
        self.explanation = _shortfall(self.problem, wanted, len(self.selected))
        self.seconds = time.perf_counter() - t0
        if method == "greedy":
            self.solver += f", {_STOPPED[self.status]} after {self.seconds:.2f} s"
        return self

    def _solve_greedy(self, p: int, seconds: float, t0: float) -> None:
        prob = self.problem
        sel, _ = greedy_sites(prob, max_sites=p)
        run = anytime_sites(prob, sel, p, seconds=seconds, started=t0)
        self.upper_bound, self.status, self.progress = run.bound, run.status, run.progress
        self.selected = rank_sites(prob, run.selected)
        self.gains = marginal_gains(prob, self.selected)
        self.solver = "greedy (lazy)" if prob.capacity is not None else "greedy (lazy) + swap search"

    def _solve_exact(self, p: int, time_limit_s: float) -> None:
        prob = self.problem
        if prob.capacity is not None:
            raise DataError("the exact solver does not model capacities", field="capacity",
                            fix="use the greedy solver with capacities, or drop --capacity")
        start, _ = greedy_sites(prob, max_sites=p)
        start = swap_sites(prob, start) if len(start) else start
        start, lagrange = exact_start(prob, p, start)
        proven = is_proven(covered_people(prob, start), lagrange)
        if proven:
            sel, bound, status = start, lagrange, "optimal"  # the bound proves the start: no MILP
        else:
            sel, _, bound, status = milp_sites(prob, p, time_limit_s, start=start)
            # HiGHS's dual bound is weak when its time limit stops it early; the Lagrangian
            # bound is valid too, so the tightest is reported.
            bound = float(np.nanmin([bound, lagrange]))
        sel = rank_sites(prob, sel)  # the MILP must open p sites; one that adds nobody is no proposal
        self.selected, self.gains, self.status = sel, marginal_gains(prob, sel), status
        self.upper_bound = bound
        self.solver = "exact: proven optimal by the Lagrangian bound, no MILP needed" if proven else "exact MILP (HiGHS)"


# How an anytime solve ended, as the solver line says it.
_STOPPED = {"optimal": "proven optimal", "time limit reached": "time budget spent",
            "bound converged": "the bound no longer tightens"}


def _shortfall(prob: SitingProblem, wanted: int, got: int) -> str:
    """Why fewer sites than asked were chosen ('' when there is no shortfall)."""
    if got >= wanted:
        return ""
    n = prob.coverage.shape[0]
    useful = int((np.asarray(prob.coverage.astype(bool) @ prob.weights).ravel() > 0).sum())
    why = [f"{wanted} new sites were asked for; {got} are proposed"]
    if n < wanted:
        why.append(f"there are only {n:,} candidate sites")
    if useful < wanted:
        why.append(f"only {useful:,} of the {n:,} candidates reach anyone not already covered "
                   "(the others reach only covered people, or nobody)")
    if got < min(useful, wanted):
        why.append(f"after {got} sites no other candidate adds anyone: every person a candidate can "
                   "reach is covered")
    return "; ".join(why)


def _coverage(matrix: ArrayLike | sparse.spmatrix | sparse.sparray, n_demand: int,
              max_metres: float | None) -> sparse.csr_matrix:
    """The solvers' form: candidates × demand CSR, value = metres + 1 (so 0 m stays stored)."""
    if sparse.issparse(matrix):
        cov = sparse.csr_matrix(matrix, dtype=np.float64, copy=True)
        cov.sum_duplicates()
        if max_metres is not None:
            cov.data[~(cov.data <= max_metres)] = np.nan  # NaN entries are dropped below
    else:
        dense = np.asarray(matrix, dtype=np.float64)
        if dense.ndim != 2:
            raise DataError(f"the coverage matrix has {dense.ndim} dimensions", field="coverage",
                            fix="give a candidates × demand matrix")
        reach = (dense != 0) & ~np.isnan(dense) if max_metres is None else dense <= max_metres
        rows, cols = np.nonzero(reach)
        cov = sparse.csr_matrix((np.where(np.isfinite(dense[rows, cols]), dense[rows, cols], 0.0), (rows, cols)),
                                shape=dense.shape)
    if cov.shape[1] != n_demand:
        hint = " (it looks transposed: rows must be candidates)" if cov.shape[0] == n_demand else ""
        raise DataError(f"the coverage matrix has {cov.shape[1]} demand columns for {n_demand} weights{hint}",
                        field="coverage", fix="build both from the same demand points, candidates as rows")
    keep = np.isfinite(cov.data)
    if (cov.data[keep] < 0).any():
        raise DataError("the coverage matrix has a negative distance", field="coverage",
                        fix="give walking metres (>= 0)")
    if not keep.all():
        cov.data[~keep] = 0.0
        cov.data[keep] += 1.0
        cov.eliminate_zeros()
    else:
        cov.data += 1.0
    return cov


@dataclass
class CoverageTarget:
    """The fewest new sites that reach a coverage share (greedy set cover).

    Attributes
    ----------
    selected, gains : numpy.ndarray
        Sites in order of choice and the people each adds.
    reached : bool
        Whether the target share was reached.
    lower_bound : int
        A proven lower bound on the number of sites any answer needs (0 when the target is
        not reachable): the fewest sites whose single-site gains add up to the people still to
        cover, raised to the LP relaxation's ceiling on small models without capacities.
    reachable_share : float
        The most any number of candidates could reach (people no candidate reaches, on
        islands or off-network, limit it).
    explanation : str
        Why the target cannot be reached, when it cannot.

    """

    problem: SitingProblem
    selected: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))
    gains: np.ndarray = field(default_factory=lambda: np.array([]))
    reached: bool = False
    lower_bound: int = 0
    reachable_share: float = np.nan
    explanation: str = ""
    solver: str = "greedy set cover"
    seconds: float = 0.0
    # People beyond the snap cap, for the explanation only: not an argument, not in the repr.
    _offnetwork: float = field(default=0.0, init=False, repr=False, compare=False)

    @classmethod
    def from_cost_matrix(cls, coverage: ArrayLike | sparse.spmatrix | sparse.sparray, weights: ArrayLike,
                         *, max_metres: float | None = None, already_covered: ArrayLike | None = None,
                         capacity: ArrayLike | None = None, offnetwork_pop: float = 0.0) -> CoverageTarget:
        """As :meth:`MaximalCovering.from_cost_matrix`; ``offnetwork_pop`` (people beyond the
        snap cap, counted in the total) is named in the explanation."""
        mc = MaximalCovering.from_cost_matrix(coverage, weights, max_metres=max_metres,
                                              already_covered=already_covered, capacity=capacity)
        obj = cls(problem=mc.problem)
        obj._offnetwork = offnetwork_pop
        return obj

    def solve(self, share: float, *, time_limit_s: float = 3.0) -> CoverageTarget:
        """Add sites until ``share`` of everyone is covered, or say why it cannot be.

        ``time_limit_s`` bounds the LP behind :attr:`lower_bound`.
        """
        t0 = time.perf_counter()
        if not 0 < share <= 1:
            raise DataError(f"target share {share} is not in (0, 1]", field="target",
                            fix="give a share such as 0.9 for 90%")
        prob = self.problem
        reachable_idx = np.flatnonzero(np.diff(prob.coverage.tocsc().indptr) > 0)
        reachable = prob.already + float(prob.weights[reachable_idx].sum())
        self.reachable_share = reachable / prob.total if prob.total else np.nan
        target = share * prob.total
        self.selected, self.gains = greedy_sites(prob, max_sites=prob.coverage.shape[0], stop_at=target)
        covered = prob.already + self.gains.sum()
        self.reached = covered >= target - 1e-9
        if self.reached:
            self.lower_bound = min(fewest_sites(prob, target - prob.already, time_limit_s), len(self.selected))
            tight = "optimal" if self.lower_bound == len(self.selected) else f"at least {self.lower_bound} needed"
            self.solver = f"greedy set cover: {len(self.selected)} sites ({tight}, proven lower bound)"
        else:
            self.explanation = self._why_not(share, covered, reachable)
        self.seconds = time.perf_counter() - t0
        return self

    def _why_not(self, share: float, covered: float, reachable: float) -> str:
        prob = self.problem
        unreachable = prob.total - reachable
        why = [f"the target {share:.1%} cannot be reached: at most {covered / prob.total:.1%} "
               f"with {len(self.selected)} new sites"]
        if unreachable > 0:
            off = self._offnetwork
            why.append(f"{unreachable:,.0f} people are within the threshold of no candidate site"
                       + (f" ({off:,.0f} of them off-network, beyond the snap cap from any street)"
                          if off else " (on network islands or far from every candidate)"))
        if prob.capacity is not None and reachable / prob.total >= share:
            why.append("site capacities limit what each new site can serve")
        return "; ".join(why)
