from __future__ import annotations

from pathlib import Path

import pytest

from circles import WalkNetwork, load_network

DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def chengdu_pbf() -> Path:
    return DATA / "chengdu.osm.pbf"


@pytest.fixture(scope="session")
def chengdu_net(chengdu_pbf) -> WalkNetwork:
    """The Chengdu walking network, built once per test session (tests must not modify it)."""
    return load_network(chengdu_pbf)
