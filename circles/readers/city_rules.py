"""The rules the cities' own documents set, as data, each with its document and a verbatim quote.

Five published texts (two on Deyang, one each on Neijiang, Baoji and Weinan) are where the
``deyang``, ``baoji``, ``neijiang`` and ``weinan`` profiles take their rules from. :data:`RULES`
holds the rules the profiles are held to; :data:`EXTRA_RULES` other per-unit figures the same texts
give; :data:`DEYANG_FUNCTIONS` the functions of a Deyang complex as the texts name them;
:data:`NOT_IN_DOCUMENTS` the numbers the package uses that no text gives.

Kinds ``unit_levels``, ``criteria`` and ``catalogue`` describe a structure (a unit hierarchy, what a
siting weighs, how many services a catalogue holds): they name no pass/fail figure.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..constants import PERSONS_PER_HOUSEHOLD, WALK_KMH
from ..errors import ProfileError

__all__ = ["CITIES", "DEYANG_FUNCTIONS", "EXTRA_RULES", "NOT_IN_DOCUMENTS", "RULES", "SEED_FILES",
           "Function", "Rule", "Unsupported", "rules_for"]

CITIES = ("deyang", "baoji", "neijiang", "weinan")
_SCOPES = ("community", "complex", "city", "tier", "grid")

# Document titles as the texts print them, with the city. Deyang's first text is a newspaper page
# without a headline ("(上接B1版)"): its rules sit under the section heading used here.
_DEYANG_A = "《提升服务效能 完善社区综合服务体系》（德阳）"
_DEYANG_B = "《打出治理“组合拳” 提升群众满意度》（德阳）"
_NEIJIANG = "《城市党建聚势赋能 基层治理提质升级》（内江）"
_WEINAN = "《细“治”入微办好民生事》（渭南）"
_BAOJI = "《宝鸡市推进“四型”社区建设情况调查》（宝鸡）"
# Which seed text (../shared/seeds/) each document is: provenance, not a file the package reads.
SEED_FILES = {
    _DEYANG_A: "000_7b489dc665fc2376.txt",
    _NEIJIANG: "001_74f3f97bd3a0421a.txt",
    _WEINAN: "002_2e8de2215aa771e5.txt",
    _DEYANG_B: "003_edb5874c69f8c0f9.txt",
    _BAOJI: "004_0c77d8b36985ac19.txt",
}


@dataclass(frozen=True)
class Rule:
    """One rule a city's document sets.

    Attributes
    ----------
    code : str
        Stable id, e.g. ``community_space_min_m2``; the same code in two cities is the same check.
    city : str
        ``deyang``, ``baoji``, ``neijiang`` or ``weinan``.
    scope : str
        What it is checked on: ``community`` (per 社区), ``complex``, ``city``, ``tier``, ``grid``.
    kind : str
        How it is evaluated: ``min_value``, ``per_households``, ``presence_if_households``,
        ``per_residents``, ``min_count``, ``planned_counts``, ``max_minutes``, ``max_share``;
        or a structure (``unit_levels``, ``criteria``, ``catalogue``) with no pass/fail.
    threshold : float, dict or None
        The figure; a dict where the rule has one per tier, level or part.
    unit_of_measure : str
        The unit of the figure and the threshold.
    needs : tuple of str
        The data columns or inputs the rule needs.
    category : str or None
        The service category code (:func:`circles.readers.services.builtin_catalogue`) a
        presence or walking rule is about.
    document, quote : str
        The source document's title and a short verbatim quote from it.
    note_en : str
        The rule in one English sentence, with what the text leaves open.

    """

    code: str
    city: str
    scope: str
    kind: str
    threshold: float | dict | None
    unit_of_measure: str
    needs: tuple[str, ...]
    category: str | None
    document: str
    quote: str
    note_en: str

    def __post_init__(self) -> None:
        if self.city not in CITIES or self.scope not in _SCOPES or self.document not in SEED_FILES:
            raise ProfileError(f"rule {self.code!r}: unknown city, scope or document",
                               fix=f"city in {CITIES}, scope in {_SCOPES}, a document of SEED_FILES")
        if not 10 <= len(self.quote) <= 80:
            raise ProfileError(f"rule {self.code!r}: a quote is 10-80 characters", field="quote",
                               fix="quote the sentence that sets the rule, shortened")

    @property
    def source(self) -> str:
        """The document and the quote, as a table's ``source`` column shows them."""
        return f"{self.document}: “{self.quote}”"


RULES: tuple[Rule, ...] = (
    # Deyang: the complexes, their circles and the community's space.
    Rule("complex_tier_counts", "deyang", "city", "planned_counts",
         {"district": 8, "community": 40, "station": 32}, "complexes", ("tier",), None, _DEYANG_A,
         "规划建设80个社区便民服务综合体,其中,片区级8个、社区级40个、驿站级32个",
         "80 community service complexes are planned city-wide: 8 district (片区级), 40 community "
         "(社区级) and 32 station (驿站级); no split by district or street is given."),
    Rule("tier_minutes", "deyang", "tier", "max_minutes",
         {"district": 15, "community": 10, "station": 5}, "minutes walk", ("network",), None,
         _DEYANG_A, "建设“15分钟、10分钟、5分钟”便民服务圈",
         "The complexes make 15-, 10- and 5-minute service circles; the text pairs them with the "
         "three tiers only by listing both in the same order."),
    Rule("complex_siting_criteria", "deyang", "complex", "criteria", None, "none",
         ("service_radius", "floor_area_m2", "population"), None, _DEYANG_A,
         "根据“服务半径+载体规模+人口数量”3个指标",
         "Complexes are chosen by three indicators, service radius, size of the premises and "
         "population, with no figure for any of them."),
    Rule("community_space_min_m2", "deyang", "community", "min_value", 300.0, "m2",
         ("floor_area_m2",), None, _DEYANG_A, "全市208个城市社区,阵地面积全部达到300平方米以上",
         "Every one of the 208 urban communities has at least 300 m2 of service premises (阵地面积, "
         "the community's party-mass service centre), reported as achieved."),
    Rule("service_catalogue", "deyang", "complex", "catalogue",
         {"categories": 8, "public_services": 53, "life_services": 65}, "categories / items",
         ("functions",), None, _DEYANG_A,
         "从社区管理、便民服务、教育培训等8大类53小类公共服务以及65项生活服务中按需配置服务功能和服务项目",
         "Each complex configures, as needed, functions from 8 categories / 53 sub-categories of "
         "public services and 65 life services; the 53 and the 65 are not listed."),
    Rule("unit_levels", "deyang", "city", "unit_levels",
         {"市": 1, "区": 2, "街道": 3, "社区": 4, "小区": 5}, "level (1 = top)", ("units",), None,
         _DEYANG_B, "构建起“市、区、街道、社区、小区”五级联动机制",
         "Governance runs on five linked levels: city, district, street, community, residential "
         "compound (小区)."),
    # Baoji: space per household, schools per community, workers.
    Rule("space_per_100_households", "baoji", "community", "per_households", 30.0,
         "m2 per 100 households", ("floor_area_m2", "households"), None, _BAOJI,
         "按照每百户30平方米以上标准落实社区办公服务场所",
         "A community's office and service premises are at least 30 m2 per 100 households."),
    Rule("space_committee_share", "baoji", "community", "max_share",
         {"committees": 0.3, "residents_and_organisations": 0.7}, "share of floor area",
         ("committee_floor_area_m2", "floor_area_m2"), None, _BAOJI,
         "将30%的用房用于社区“两委”办公,70%的用于居民和社会组织活动",
         "30% of a community's premises serve the two committees' offices and 70% the residents' "
         "and social organisations' activities (read here as: committees at most 30%)."),
    Rule("kindergarten_households", "baoji", "community", "presence_if_households", 1500.0,
         "households", ("households", "services"), "kindergarten", _BAOJI,
         "力争1500户以上居民社区设有1所以上普惠性幼儿园",
         "A community of 1,500 households or more aims to have at least one public-benefit "
         "(普惠性) kindergarten."),
    Rule("primary_school_households", "baoji", "community", "presence_if_households", 3000.0,
         "households", ("households", "services"), "primary_school", _BAOJI,
         "3000户以上居民社区设有1所以上小学",
         "A community of 3,000 households or more aims to have at least one primary school."),
    Rule("school_walk_minutes", "baoji", "community", "max_minutes", 15.0, "minutes walk",
         ("network", "services"), "primary_school", _BAOJI, "基本形成15分钟步行入学圈",
         "Residents reach a school within a 15-minute walk; the text does not say which schools "
         "(it follows the kindergarten and primary-school aims)."),
    Rule("workers_per_10000", "baoji", "city", "per_residents", 18.0,
         "workers per 10,000 residents", ("workers", "residents"), None, _BAOJI,
         "按照每万城镇常驻人口不少于18人标准选优配强社区工作者",
         "At least 18 community workers per 10,000 urban residents; the text does not say over "
         "which unit the ratio is taken."),
    # Neijiang: the 15-minute service circle and what it holds, workers, grid levels.
    Rule("service_catalogue", "neijiang", "complex", "catalogue",
         {"categories": 8, "services": 53}, "categories / items", ("functions",), None, _NEIJIANG,
         "集成提供社区治理、康养理疗、青少年发展等8大类53项服务",
         "The multi-level service complexes offer 8 categories / 53 services; the 53 are not listed."),
    Rule("service_circle_minutes", "neijiang", "tier", "max_minutes", 15.0, "minutes walk",
         ("network",), None, _NEIJIANG, "打造群众可进入、可参与、可共享的“15分钟服务圈”",
         "The complexes make a 15-minute service circle that residents can enter, join and share."),
    Rule("canteen_minutes", "neijiang", "community", "max_minutes", 15.0, "minutes walk",
         ("network", "services"), "canteen", _NEIJIANG,
         "开办“夕阳红”养老中心、“双创”就业辅导站、“四点半学校”、社区食堂等71家",
         "Community canteens are among the 71 services opened; placing them inside the 15-minute "
         "circle is the reading of the issue, not a sentence of the text."),
    Rule("elderly_care_minutes", "neijiang", "community", "max_minutes", 15.0, "minutes walk",
         ("network", "services"), "elderly_care", _NEIJIANG,
         "开办“夕阳红”养老中心、“双创”就业辅导站、“四点半学校”、社区食堂等71家",
         "Elderly centres (“夕阳红”养老中心) are among the 71 services opened, read as inside the "
         "15-minute circle."),
    Rule("after_school_minutes", "neijiang", "community", "max_minutes", 15.0, "minutes walk",
         ("network", "services"), None, _NEIJIANG,
         "开办“夕阳红”养老中心、“双创”就业辅导站、“四点半学校”、社区食堂等71家",
         "After-school care (“四点半学校”) is among the 71 services opened; no service category "
         "code exists for it yet."),
    Rule("child_care_minutes", "neijiang", "community", "max_minutes", 15.0, "minutes walk",
         ("network", "services"), "kindergarten", _NEIJIANG, "提供养老助残、早教托幼、文化体育、社区营造等服务",
         "Early education and child care (早教托幼) are among the partners' services, read as "
         "inside the 15-minute circle."),
    Rule("workers_per_10000", "neijiang", "city", "per_residents", 18.0,
         "workers per 10,000 residents", ("workers", "residents"), None, _NEIJIANG,
         "全面完成每万城镇常住人口拥有社区工作者18人的目标",
         "The city has met its target of 18 community workers per 10,000 urban residents."),
    Rule("unit_levels", "neijiang", "city", "unit_levels",
         {"街道": 1, "社区": 2, "网格": 3, "楼栋": 4}, "level (1 = top)", ("units",), None, _NEIJIANG,
         "构建起“街道—社区—网格—楼栋”四级组织架构的网格化管理模式",
         "Grid management runs on four levels: street, community, grid, building."),
    # Weinan: grids and general social workers.
    Rule("grid_levels", "weinan", "grid", "unit_levels", {"小区": 1, "楼栋": 2, "单元": 3},
         "level (1 = top)", ("units",), None, _WEINAN,
         "按照小区—楼栋—单元三级架构,划定一、二、三级网格8.9万余个",
         "Grids have three levels, residential compound, building and stairwell unit (first-, "
         "second- and third-level grids)."),
    Rule("general_social_workers_min", "weinan", "community", "min_count", 3.0,
         "全科社工 per community", ("general_social_workers",), None, _WEINAN, "每个社区全科社工达3人以上",
         "Every community has at least 3 general social workers (全科社工)."),
)

# Other per-unit figures the same texts give, beyond those the profiles are held to; each quoted
# and checked like RULES, left to the lead to take in or leave out.
EXTRA_RULES: tuple[Rule, ...] = (
    Rule("secretary_reserves_min", "deyang", "community", "min_count", 2.0, "people per community",
         ("secretary_reserves",), None, _DEYANG_A, "按照每个社区不少于2人标准建好社区党组织书记后备人才库",
         "Each community keeps at least 2 people in reserve for its party secretary."),
    Rule("public_institution_staff_min", "baoji", "community", "min_count", 2.0,
         "staff per community", ("public_institution_staff",), None, _BAOJI,
         "为每个社区配备2名事业身份工作人员",
         "Each community is given 2 staff with public-institution (事业) status."),
    Rule("greening_ratio_min", "baoji", "community", "min_value", 0.3, "share of area",
         ("green_ratio",), None, _BAOJI, "推进社区周边见缝插绿,确保绿化率达到30%以上",
         "Green cover around the community is at least 30%."),
    Rule("life_service_circle_minutes", "baoji", "community", "max_minutes", 15.0, "minutes walk",
         ("network", "services"), "market", _BAOJI, "建设“15分钟生活服务圈”,提升群众居家便利感",
         "Daily shops and services (supermarkets first) lie within a 15-minute life-service circle."),
    Rule("civic_service_circle_minutes", "baoji", "community", "max_minutes", 15.0,
         "minutes walk", ("network", "services"), "community_service", _BAOJI,
         "建设“15分钟利民服务圈”,提升群众办事便利感",
         "The community party-mass service centre lies within a 15-minute civic-service circle."),
    Rule("funding_min_yuan", "neijiang", "community", "min_value", 150000.0, "yuan a year",
         ("annual_funding_yuan",), None, _NEIJIANG, "落实每个社区每年不低于15万元工作经费",
         "Each community receives at least 150,000 yuan of working funds a year."),
    Rule("grid_team_min", "neijiang", "grid", "min_count",
         {"全科网格员": 1, "社区专职工作者": 1, "民辅警": 1}, "people per grid",
         ("grid_workers", "community_workers", "police"), None, _NEIJIANG,
         "按照1名全科网格员、1名社区专职工作者、1名民辅警、N个其他基层力量组建",
         "Each grid team has 1 general grid worker, 1 full-time community worker, 1 auxiliary "
         "police officer and others (“1+1+1+N”)."),
    Rule("response_levels", "weinan", "city", "unit_levels",
         {"县(市、区)": 1, "街道": 2, "社区": 3, "网格": 4}, "level (1 = top)", ("units",), None,
         _WEINAN, "推行网格—社区—街道—县(市、区)四级响应",
         "Disputes escalate over four levels, grid, community, street, county: grids sit below "
         "communities."),
    Rule("centre_and_station", "weinan", "complex", "unit_levels",
         {"中心社区党群服务中心": 1, "小区党群服务站": 2}, "level (1 = top)", ("tier",), None, _WEINAN,
         "建立“中心社区党群服务中心+小区党群服务站”模式",
         "Service premises come in two tiers, a central community centre and stations in "
         "residential compounds."),
)


def rules_for(city: str, *, extra: bool = False) -> tuple[Rule, ...]:
    """The rules one city's documents set.

    Parameters
    ----------
    city
        ``deyang``, ``baoji``, ``neijiang`` or ``weinan`` (any case).
    extra
        Also the other per-unit figures of :data:`EXTRA_RULES`.

    Returns
    -------
    tuple of Rule
        In the order of :data:`RULES`, then :data:`EXTRA_RULES`.

    Raises
    ------
    ProfileError
        A city with no documents.

    """
    key = str(city).strip().lower()
    if key not in CITIES:
        raise ProfileError(f"no documents of city {city!r}", field="city",
                           fix=f"use one of {', '.join(CITIES)}")
    pool = RULES + EXTRA_RULES if extra else RULES
    return tuple(r for r in pool if r.city == key)


@dataclass(frozen=True)
class Function:
    """A function of a Deyang complex as the documents name it.

    ``level`` is ``category`` (one of the 8 大类 the texts name), ``scene`` (a 场景 of a 社区综合体)
    or ``service`` (a named service); ``categories`` are the service category codes it coincides
    with, empty where none does.
    """

    name_zh: str
    name_en: str
    categories: tuple[str, ...]
    level: str
    document: str
    quote: str


_CATS_A = "从社区管理、便民服务、教育培训等8大类53小类公共服务"
_CATS_B = "集成提供社区治理、康养理疗、青少年发展等8大类53项服务"
_SCENES = "建设集教育培训、文化交流、休闲娱乐、养老托幼、商业商贸等多种场景于一体的社区综合体"
_SERVICES = "广泛开办“夕阳红”养老中心、“双创”就业辅导站、“四点半学校”、社区食堂等"
# Six of the eight categories are named across the two texts (社区管理 in one, 社区治理 in the
# other, perhaps the same); the scenes and services fill in what the complexes hold.
DEYANG_FUNCTIONS: tuple[Function, ...] = (
    Function("社区管理", "community management", (), "category", _DEYANG_A, _CATS_A),
    Function("便民服务", "convenience services", ("community_service",), "category", _DEYANG_A, _CATS_A),
    Function("教育培训", "education and training", (), "category", _DEYANG_A, _CATS_A),
    Function("社区治理", "community governance", (), "category", _DEYANG_B, _CATS_B),
    Function("康养理疗", "health, wellness and physiotherapy", (), "category", _DEYANG_B, _CATS_B),
    Function("青少年发展", "youth development", (), "category", _DEYANG_B, _CATS_B),
    Function("文化交流", "culture and exchange", ("culture_sport",), "scene", _DEYANG_A, _SCENES),
    Function("休闲娱乐", "leisure and recreation", (), "scene", _DEYANG_A, _SCENES),
    Function("养老托幼", "elderly care and child care", ("elderly_care", "kindergarten"), "scene",
             _DEYANG_A, _SCENES),
    Function("商业商贸", "commerce and trade", (), "scene", _DEYANG_A, _SCENES),
    Function("养老中心", "elderly centre", ("elderly_care",), "service", _DEYANG_B, _SERVICES),
    Function("就业辅导站", "employment guidance station", (), "service", _DEYANG_B, _SERVICES),
    Function("四点半学校", "after-school care", (), "service", _DEYANG_B, _SERVICES),
    Function("社区食堂", "community canteen", ("canteen",), "service", _DEYANG_B, _SERVICES),
)


@dataclass(frozen=True)
class Unsupported:
    """A number the package uses, and whether any of the five documents gives it."""

    where: str
    value: float | str
    supported: str
    note_en: str


NOT_IN_DOCUMENTS: tuple[Unsupported, ...] = (
    Unsupported("profiles._STANDARDS min_complex_floor_area_m2; deyang community tier "
                "min_floor_area_m2", 600.0, "no",
                "No document gives 600 m2; neither Deyang text gives a floor area for a complex or "
                "a tier (the code's source 'embedded service complex >= 600 m2 (Deyang)' is not in "
                "them)."),
    Unsupported("profiles._STANDARDS preferred_complex_floor_area_m2; deyang district tier "
                "min_floor_area_m2", 800.0, "no", "No document gives 800 m2."),
    Unsupported("deyang station tier min_floor_area_m2", 300.0, "partly",
                "Deyang gives 300 m2 per urban community (its service premises, 阵地面积), as "
                "achieved, not per 驿站级 complex."),
    Unsupported("profiles._STANDARDS min_community_space_m2 (every profile)", 300.0,
                "deyang only", "Per community, Deyang's text only."),
    Unsupported("profiles._STANDARDS floor_area_m2_per_100_households", 30.0, "baoji only",
                "Baoji's text gives it for a community's office and service premises; the code "
                "calls it a national standard, which no document here says."),
    Unsupported("profiles._STANDARDS workers_per_10000_residents (every profile)", 18.0,
                "baoji, neijiang", "Deyang's and Weinan's texts give no ratio (Weinan gives >= 3 "
                "全科社工 per community instead)."),
    Unsupported("profiles._STANDARDS kindergarten_households (every profile)", 1500.0,
                "baoji only", "Set per community (a community of >= 1,500 households has one), "
                "not as a study-wide ratio of complexes; and as an aim (力争)."),
    Unsupported("profiles._STANDARDS primary_school_households (every profile)", 3000.0,
                "baoji only", "As for kindergartens: per community, an aim."),
    Unsupported("constants.PERSONS_PER_HOUSEHOLD", PERSONS_PER_HOUSEHOLD, "no",
                "No document gives persons per household (the 2020 census does)."),
    Unsupported("constants.WALK_KMH", WALK_KMH, "no",
                "The documents speak in minutes only; no walking speed is given."),
    Unsupported("deyang tier minutes 15 / 10 / 5 for 片区级 / 社区级 / 驿站级", "15 / 10 / 5",
                "partly", "Both lists stand in one passage in the same order; the pairing is not "
                "stated."),
    Unsupported("deyang nested = true", "true", "no",
                "No document says a higher-tier complex also serves the lower tiers' circles."),
    Unsupported("services.py kindergarten 300 m, primary_school 500 m, middle_school 1000 m",
                "300 / 500 / 1000 m", "no",
                "GB 50180 radii, not in these texts; Baoji gives a 15-minute walk to school "
                "instead, longer than 500 m at any usual speed."),
    Unsupported("services.py health 15 min vs profiles._LEVEL_TAGS clinic at the 5-minute tier",
                "15 / 5 min", "no", "No document gives a threshold for health services."),
    Unsupported("composition per parent unit", "8 / 40 / 32", "no",
                "Deyang's 8 / 40 / 32 is a city-wide plan; no split by district or street."),
    Unsupported("a school counts within its walking threshold of a community", "threshold",
                "no", "Baoji says the community has one (社区设有); counting one nearby is a choice."),
)
