"""The city profiles carry their documents' rules, each with its source (issue 18, item 1)."""

from __future__ import annotations

import pytest

from circles import get_profile, list_profiles
from circles.readers.city_rules import CITIES, NOT_IN_DOCUMENTS, RULES, rules_for


@pytest.mark.parametrize("city", CITIES)
def test_every_city_profile_has_its_documents_rules(city):
    profile = get_profile(city)
    assert city in list_profiles()
    assert profile.rules
    assert all(r.city == city for r in profile.rules)
    assert all(r.document in r.source and r.quote in r.source for r in profile.rules)


def test_the_rules_the_issue_names_are_there_with_their_figures():
    by = {(r.city, r.code): r for r in RULES}
    assert by[("deyang", "complex_tier_counts")].threshold == {"district": 8, "community": 40, "station": 32}
    assert by[("deyang", "community_space_min_m2")].threshold == 300
    assert by[("deyang", "community_space_min_m2")].scope == "community"
    assert by[("baoji", "space_per_100_households")].threshold == 30
    assert by[("baoji", "kindergarten_households")].threshold == 1500
    assert by[("baoji", "primary_school_households")].threshold == 3000
    assert by[("baoji", "workers_per_10000")].threshold == 18
    assert by[("neijiang", "workers_per_10000")].threshold == 18
    assert by[("weinan", "general_social_workers_min")].threshold == 3
    assert "1500户以上" in by[("baoji", "kindergarten_households")].quote


def test_no_tier_carries_a_floor_area_no_document_gives():
    """600 / 800 m² per complex are in no document: the deyang tiers demand none."""
    assert all(t.min_floor_area_m2 is None for t in get_profile("deyang").tiers)
    assert "min_complex_floor_area_m2" not in get_profile("deyang").standards
    assert any(u.value == 600 and u.supported == "no" for u in NOT_IN_DOCUMENTS)


def test_a_profile_without_a_city_has_no_rules_and_an_unknown_city_is_refused():
    assert get_profile("gb50180").rules == ()
    with pytest.raises(Exception, match="city"):
        rules_for("chengdu")
