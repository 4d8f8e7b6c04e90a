"""The flat module paths of circles before the four rooms, kept so existing code keeps working.

``from circles.figures import coverage_figure`` or ``import circles.network`` still work: each old name
is an alias of the module in its room (``circles.outputs.figures``, ``circles.engine.network``). New code
imports from the rooms, or uses the public API in ``circles``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types

MOVED = {
    "crs": "readers.crs", "osm": "readers.osm", "roads": "readers.roads", "linework": "readers.linework",
    "tables": "readers.tables", "facilities": "readers.facilities", "population": "readers.population",
    "population_osm": "readers.population_osm", "population_raster": "readers.population_raster",
    "services": "readers.services", "profiles": "readers.profiles",
    "network": "engine.network", "routing": "engine.routing", "isochrones": "engine.isochrones",
    "coverage": "engine.coverage", "service_access": "engine.service_access", "siting": "engine.siting",
    "gaps": "engine.gaps", "standards": "engine.standards", "synthetic": "engine.synthetic",
    "pipeline": "runs.pipeline", "proposals": "runs.proposals", "audit": "runs.audit",
    "compare": "runs.compare",
    "io": "outputs.runfolder", "maps": "outputs.maps", "map_layers": "outputs.map_layers",
    "figures": "outputs.figures", "report": "outputs.report", "explorer": "outputs.explorer",
    "offline": "outputs.offline", "i18n": "outputs.i18n",
}


# Names that left their old module when the rooms were drawn (issue 17): the old path still finds them.
RENAMED = {
    "facilities": {"attach": "engine.placement", "read_facilities": "runs.load",
                   "facilities_from_frame": "runs.load"},
    "roads": {"network_from_roads": "runs.load"},
    "network": {"load_network": "runs.load", "default_network_path": "readers.files"},
    "io": {"require_file": "readers.files"},
    "population": {"read_population": "runs.load"},
}


class _Proxy(types.ModuleType):
    """An old module path whose names now live in two rooms."""

    def __init__(self, name: str, target: str, renamed: dict[str, str]) -> None:
        super().__init__(name)
        self.__target = target
        self.__renamed = renamed

    def __getattr__(self, attr: str):
        home = self.__renamed.get(attr)
        module = importlib.import_module(f"{__package__}.{home}" if home else self.__target)
        return getattr(module, attr)


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str, old: str) -> None:
        self.target = target
        self.old = old

    def create_module(self, spec):
        if self.old in RENAMED:
            return _Proxy(spec.name, self.target, RENAMED[self.old])
        return importlib.import_module(self.target)

    def exec_module(self, module) -> None:
        """The target module ran when it was imported."""


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path=None, target=None):
        package, _, old = fullname.rpartition(".")
        if package != __package__ or old not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, _Alias(f"{__package__}.{MOVED[old]}", old))


def install() -> None:
    """Put the alias finder on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _MovedFinder())  # before any finder that still sees the old files
