"""circles: 15-minute service circles on the real walking network.

The public API, in the order of the pipeline: networks, profiles and facilities, routing and
isochrones, population and coverage, siting, maps and audits.
"""

from ._moved import install as _install_moved
from ._version import __version__
from .engine import synthetic  # so circles.synthetic.make_city works after a plain import circles
from .engine.coverage import CoverageResult, compute_coverage
from .engine.gaps import gap_hexagons
from .engine.isochrones import distance_bands, facility_isochrones, tier_isochrones
from .engine.network import WalkNetwork
from .engine.placement import attach
from .engine.provision import Provision
from .engine.provision_tiers import ProvisionResult, provision
from .engine.routing import Anchors, coverage_matrix, nearest, nearest_by_tier, reach
from .engine.service_access import ServiceAccess, service_access
from .engine.siting import CoverageTarget, MaximalCovering, candidate_nodes
from .engine.standards import check_standards
from .errors import (
    CirclesError,
    DataError,
    InputFileError,
    NetworkError,
    OfflineError,
    ProfileError,
    ValidationError,
)
from .outputs.maps import coverage_map, draw_run_map, result_map
from .outputs.network_file import save_network
from .readers.crs import from_wgs84, gcj02_to_wgs84, to_wgs84, wgs84_to_gcj02
from .readers.facilities import from_osm
from .readers.population import Demand, estimate_from_osm
from .readers.profiles import Profile, Tier, get_profile, list_profiles
from .readers.services import builtin_catalogue, load_catalogue, service_points
from .runs.audit import load_config, run_audit
from .runs.compare import compare_audits
from .runs.load import (
    facilities_from_frame,
    load_network,
    network_from_roads,
    read_facilities,
    read_population,
)
from .runs.pipeline import RunInputs, coverage_run, isochrone_layers, site_run

_install_moved()  # circles.network, circles.figures...: the old flat paths, as aliases
# The engine writes no files; net.save(path) is the outputs' writer, bound here at the door.
WalkNetwork.save = save_network

__all__ = [
    "Anchors",
    "CirclesError",
    "CoverageResult",
    "CoverageTarget",
    "DataError",
    "Demand",
    "InputFileError",
    "MaximalCovering",
    "NetworkError",
    "OfflineError",
    "Profile",
    "ProfileError",
    "Provision",
    "ProvisionResult",
    "RunInputs",
    "ServiceAccess",
    "Tier",
    "ValidationError",
    "WalkNetwork",
    "__version__",
    "attach",
    "builtin_catalogue",
    "candidate_nodes",
    "check_standards",
    "compare_audits",
    "compute_coverage",
    "coverage_map",
    "coverage_matrix",
    "coverage_run",
    "distance_bands",
    "draw_run_map",
    "estimate_from_osm",
    "facilities_from_frame",
    "facility_isochrones",
    "from_osm",
    "from_wgs84",
    "gap_hexagons",
    "gcj02_to_wgs84",
    "get_profile",
    "isochrone_layers",
    "list_profiles",
    "load_catalogue",
    "load_config",
    "load_network",
    "nearest",
    "nearest_by_tier",
    "network_from_roads",
    "provision",
    "reach",
    "read_facilities",
    "read_population",
    "result_map",
    "run_audit",
    "save_network",
    "service_access",
    "service_points",
    "site_run",
    "synthetic",
    "tier_isochrones",
    "to_wgs84",
    "wgs84_to_gcj02",
]
