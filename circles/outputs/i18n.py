"""The words of maps, the explorer, figures and reports, in Chinese and English: every page
string lives here, and no other output module branches on the language.

Names that come from data (a tier's ``name_zh`` / ``name_en``, a profile's ``title_zh`` /
``title_en``, a service category's names) are picked by :func:`localized`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

__all__ = ["FALLBACK", "LANGS", "STRINGS", "bilingual", "bilingual_text", "city_name", "html_lang", "localized", "t",
           "writes_cjk"]

#: The page languages, and the one used when a page cannot be written in the one asked for.
LANGS = ("zh", "en")
FALLBACK = "en"
_CJK_LANGS = frozenset({"zh"})
_HTML_LANG = {"zh": "zh-CN", "en": "en"}

_MAP = {
    "title": {"zh": "十五分钟生活圈覆盖", "en": "15-minute service circle coverage"},
    "service_area": {"zh": "服务范围", "en": "service area"},
    "facility_areas": {"zh": "各设施服务范围", "en": "each facility's service area"},
    "facilities": {"zh": "设施", "en": "facilities"},
    "shown_of": {"zh": "共 {total} 个，显示 {shown} 个，全部见 facilities.csv",
                 "en": "{shown} of {total} shown; all in facilities.csv"},
    "gaps": {"zh": "未覆盖人口", "en": "uncovered population"},
    "people": {"zh": "人", "en": "people"},
    "proposals": {"zh": "建议新增站点", "en": "proposed sites"},
    "units": {"zh": "行政单元", "en": "administrative units"},
    "name": {"zh": "名称", "en": "name"},
    "tier": {"zh": "级别", "en": "tier"},
    "floor_area": {"zh": "建筑面积", "en": "floor area"},
    "served": {"zh": "服务人口", "en": "population served"},
    "in_circle": {"zh": "圈内人口", "en": "population in circle"},
    "overloaded": {"zh": "超负荷", "en": "overloaded"},
    "yes": {"zh": "是", "en": "yes"},
    "no": {"zh": "否", "en": "no"},
    "covered_share": {"zh": "覆盖率", "en": "covered share"},
    "rank": {"zh": "排序", "en": "rank"},
    "gain": {"zh": "新增覆盖人口", "en": "newly covered"},
    "minutes": {"zh": "分钟", "en": "min"},
    "profile": {"zh": "规划标准", "en": "profile"},
    "date": {"zh": "日期", "en": "date"},
    "estimate": {"zh": "人口为估算值", "en": "population is an estimate"},
    "legend_gaps": {"zh": "未覆盖人口（每个六边形）", "en": "uncovered people per hexagon"},
    "m2_per_100_households": {"zh": "每百户面积", "en": "per 100 households"},
    "uncovered": {"zh": "未覆盖", "en": "uncovered"},
    "mean_walk": {"zh": "平均步行至最近设施", "en": "mean walk to the nearest facility"},
    "unreachable": {"zh": "步行不可达", "en": "unreachable on foot"},
    "cumulative_share": {"zh": "累计覆盖率", "en": "cumulative covered share"},
    "nearest_existing": {"zh": "距现有设施", "en": "to the nearest existing"},
    "tiles": {"zh": "底图", "en": "base map"},
    "attribution": {"zh": "© OpenStreetMap 贡献者", "en": "© OpenStreetMap contributors"},
    "scorecard": {"zh": "社区达标：未达标规则数", "en": "communities: rules failed"},
    "legend_scorecard": {"zh": "未达标规则数（点击社区查看）", "en": "rules failed (click a community)"},
    "of_evaluated": {"zh": "{failed} 条未达标（共核查 {evaluated} 条）", "en": "{failed} failed of {evaluated} evaluated"},
    "not_evaluated": {"zh": "无可核查规则", "en": "no rule evaluated"},
    "rules_failed": {"zh": "未达标规则", "en": "rules failed"},
    "value_threshold": {"zh": "数值 {value}，标准 {threshold}（{unit}）", "en": "{value} against {threshold} ({unit})"},
    "short": {"zh": "容量不足", "en": "capacity short"},
    "legend_short": {"zh": "服务范围内但设施已满、未获服务的人口（每个六边形）",
                     "en": "people within reach but not served, every complex in reach full (per hexagon)"},
    "covered_unserved": {"zh": "范围内未获服务", "en": "within reach, not served"},
    "short_served": {"zh": "已获服务", "en": "served"},
    "population": {"zh": "人口", "en": "population"},
    "capacity": {"zh": "服务容量", "en": "capacity"},
    "unlimited": {"zh": "不限（无容量数据）", "en": "unlimited (no capacity given)"},
    "assigned": {"zh": "分配服务人口", "en": "people assigned"},
    "utilisation": {"zh": "容量利用率", "en": "utilisation"},
    "extra_floor_area": {"zh": "需增建筑面积", "en": "extra floor area needed"},
}

_EXPLORER = {
    "add_as": {"zh": "新增站点级别", "en": "add new sites as"},
    "hint": {"zh": "点击候选点（灰色）新增站点，再次点击移除；点击现有设施可关闭/恢复。",
             "en": "Click a candidate (grey) to add a site, again to remove it; click an existing "
                   "facility to close or reopen it."},
    "load": {"zh": "载入选址建议", "en": "load the proposals"},
    "reset": {"zh": "重置", "en": "reset"},
    "export_csv": {"zh": "导出 CSV", "en": "export CSV"},
    "export_geojson": {"zh": "导出 GeoJSON", "en": "export GeoJSON"},
    "covered": {"zh": "覆盖人口", "en": "covered"},
    "last": {"zh": "上次变化", "en": "last change"},
    "closed": {"zh": "已关闭", "en": "closed"},
    "view": {"zh": "显示级别", "en": "show tier"},
}

# Report headings are shown in both languages on a Chinese report (see :func:`bilingual`).
_REPORT = {
    "report_title": {"zh": "十五分钟生活圈评估报告", "en": "15-minute service circle audit"},
    "report_estimate": {"zh": "人口为估算值（{label}），覆盖人数仅供参考。",
                        "en": "population is an estimate ({label}); treat covered numbers as indicative."},
    "report_population": {"zh": "人口数据说明", "en": "population"},
    "report_coverage_by_tier": {"zh": "分级覆盖", "en": "Coverage per tier"},
    "report_coverage_by_unit": {"zh": "分单元覆盖", "en": "Coverage per unit"},
    "report_coverage_by_service": {"zh": "分类服务覆盖", "en": "Coverage per service category"},
    "report_life_circle_score": {"zh": "生活圈达标", "en": "Life-circle score"},
    "report_service_gaps": {"zh": "服务缺项", "en": "Missing services"},
    "report_standards": {"zh": "标准核查", "en": "Standards checks"},
    "report_facilities": {"zh": "设施", "en": "Facilities"},
    "report_proposals": {"zh": "新增选址建议", "en": "Proposed new sites"},
    "report_changes": {"zh": "与上期相比的变化", "en": "Changes since the previous audit"},
    "report_largest_gaps": {"zh": "最大缺口", "en": "Largest gaps (H3 hexagons)"},
    "report_map": {"zh": "覆盖地图", "en": "Coverage map"},
    "report_map_note": {"zh": "© OpenStreetMap 贡献者。交互地图见 map.html。",
                        "en": "© OpenStreetMap contributors. The interactive map is map.html."},
    "report_provenance": {"zh": "数据来源", "en": "Provenance"},
    "report_more_rows": {"zh": "… 另有 {n} 行，见 CSV 文件与 report.xlsx。",
                         "en": "… {n} more rows in the CSV and in report.xlsx."},
    "report_network": {"zh": "路网：© OpenStreetMap 贡献者（ODbL）。",
                       "en": "Street network: © OpenStreetMap contributors (ODbL)."},
    "report_share_axis": {"zh": "覆盖人口比例（蓝）/ 未覆盖（橙），%",
                          "en": "% of population covered (blue) / not covered (orange)"},
    "report_share_alt": {"zh": "分级覆盖率", "en": "coverage per tier"},
    "report_scorecard": {"zh": "社区评分卡（未达标最多者在前）", "en": "Community scorecard (worst first)"},
    "report_standards_by_unit": {"zh": "分社区规则核查（含文件原文）", "en": "Rules per community, with the documents' words"},
    "report_scorecard_headline": {"zh": "{city}：{total} 个社区中 {n} 个达到全部规则",
                                  "en": "{city}: {n} of {total} communities meet every rule"},
    "report_scorecard_none": {"zh": "数据无法核查任何规则的社区：{m} 个", "en": "communities with no rule the data can answer: {m}"},
    "report_provision": {"zh": "容量约束下的服务供给", "en": "Provision under capacity"},
    "report_provision_rule": {"zh": "容量规则", "en": "capacity rule"},
    "report_provision_busiest": {"zh": "利用率最高的 10 个综合体（各取其最满的级别）",
                                 "en": "The 10 most utilised complexes (each at its fullest tier)"},
    "report_provision_extra": {"zh": "需增加建筑面积的综合体", "en": "Complexes needing extra floor area"},
    "report_provision_no_extra": {"zh": "服务范围内的人口均已获服务，无需增加建筑面积。",
                                  "en": "Everyone within reach is served: no complex needs extra floor area."},
}

# The cities whose documents set a profile's rules (``manifest["scorecard"]["city"]``).
_CITIES = {
    "city_deyang": {"zh": "德阳", "en": "Deyang"},
    "city_baoji": {"zh": "宝鸡", "en": "Baoji"},
    "city_neijiang": {"zh": "内江", "en": "Neijiang"},
    "city_weinan": {"zh": "渭南", "en": "Weinan"},
}

STRINGS: dict[str, dict[str, str]] = {**_MAP, **_EXPLORER, **_REPORT, **_CITIES}

# Brief J (issue 21, item 4): the explorer's legend, its proposals button and scenario gain, and the
# report's own labels (its provenance tables and its map).
_READING = {
    "explorer_legend": {"zh": "图例", "en": "legend"},
    "explorer_people_at": {"zh": "居民点（{tier}）", "en": "people ({tier})"},
    "explorer_people_covered": {"zh": "已覆盖", "en": "covered"},
    "explorer_people_uncovered": {"zh": "未覆盖", "en": "not covered"},
    "explorer_people_unplaced": {"zh": "不在路网上或在研究区外", "en": "off the network or outside the study area"},
    "explorer_dot_size": {"zh": "点越大，人口越多", "en": "the larger the dot, the more people"},
    "explorer_sites": {"zh": "设施与站点", "en": "facilities and sites"},
    "explorer_existing": {"zh": "现有设施（颜色为其级别）", "en": "existing facility (colour: its tier)"},
    "explorer_added": {"zh": "新增站点（红色边框）", "en": "added site (red outline)"},
    "explorer_candidate": {"zh": "候选点（点击新增）", "en": "candidate site (click to add)"},
    "explorer_closed": {"zh": "已关闭的设施、未载入的建议站点", "en": "closed facility, proposal not loaded"},
    "explorer_no_proposals": {"zh": "本次运行没有选址建议（circles site 可生成）",
                              "en": "this run has no proposals (circles site makes them)"},
    "explorer_scenario_gain": {"zh": "上次变化：载入的全部建议站点较现状新增的覆盖人口",
                               "en": "last change: the people all the proposals cover beyond the run as it stands"},
    "explorer_zoom_in": {"zh": "放大", "en": "zoom in"},
    "explorer_zoom_out": {"zh": "缩小", "en": "zoom out"},
    "report_fact": {"zh": "项目", "en": "fact"},
    "report_value": {"zh": "内容", "en": "value"},
    "report_created": {"zh": "生成时间", "en": "created"},
    "report_version": {"zh": "{name} 版本", "en": "version of {name}"},
    "report_seconds": {"zh": "用时（秒）：{step}", "en": "seconds: {step}"},
    "report_input": {"zh": "输入", "en": "input"},
    "report_path": {"zh": "文件", "en": "file"},
    "report_sha256": {"zh": "校验值（SHA-256）", "en": "SHA-256"},
    # The inputs of a run (manifest "inputs") and its steps (manifest "timings_s").
    "report_part_network": {"zh": "路网", "en": "street network"},
    "report_part_profile": {"zh": "规划标准", "en": "profile"},
    "report_part_population": {"zh": "人口", "en": "population"},
    "report_part_residential": {"zh": "居住建筑或用地", "en": "residential buildings or land use"},
    "report_part_units": {"zh": "行政单元", "en": "administrative units"},
    "report_part_facilities": {"zh": "设施", "en": "facilities"},
    "report_part_scenario": {"zh": "方案", "en": "scenario"},
    "report_part_services": {"zh": "服务设施点", "en": "service points"},
    "report_part_candidates": {"zh": "候选站点", "en": "candidate sites"},
    "report_part_config": {"zh": "配置文件", "en": "configuration"},
    "report_part_coverage": {"zh": "覆盖计算", "en": "coverage"},
    "report_part_provision": {"zh": "容量供给", "en": "provision"},
    "report_part_gaps": {"zh": "缺口", "en": "gaps"},
    "report_part_isochrones": {"zh": "服务范围", "en": "service areas"},
    "report_part_write": {"zh": "写出文件", "en": "writing the files"},
    "report_part_siting": {"zh": "选址", "en": "siting"},
    "report_part_map": {"zh": "地图", "en": "map"},
    "report_part_explorer": {"zh": "方案推演页", "en": "explorer"},
    "report_part_compare": {"zh": "与上期比较", "en": "comparison"},
    "report_part_report": {"zh": "报告", "en": "report"},
    "report_part_total": {"zh": "合计", "en": "total"},
    "report_part_basemap": {"zh": "底图", "en": "basemap"},
}
STRINGS.update(_READING)

# Brief P (issue 21, item 5): the printed map, map.png (outputs/print_map.py).
_PRINT = {
    "print_basemap": {"zh": "底图", "en": "basemap"},
    "print_streets_major": {"zh": "主要道路", "en": "major roads"},
    "print_streets_minor": {"zh": "一般道路", "en": "minor streets"},
    "print_streets_foot": {"zh": "步行道", "en": "footpaths"},
    "print_water": {"zh": "水域", "en": "water"},
    "print_green": {"zh": "绿地", "en": "green space"},
    "print_residential": {"zh": "居住用地", "en": "residential land"},
    "print_buildings": {"zh": "建筑", "en": "buildings"},
    "print_north": {"zh": "北", "en": "N"},
    "print_metres": {"zh": "米", "en": "m"},
    "print_km": {"zh": "千米", "en": "km"},
    "print_scale": {"zh": "比例尺 1:{denominator}（A3 原大打印）", "en": "scale 1:{denominator} printed on A3"},
    "print_crs": {"zh": "投影：UTM {zone} 带（EPSG:{epsg}）", "en": "projection: UTM zone {zone} (EPSG:{epsg})"},
    "print_attribution": {"zh": "底图与路网：© OpenStreetMap 贡献者（ODbL）",
                          "en": "Basemap and street network: © OpenStreetMap contributors (ODbL)"},
}
STRINGS.update(_PRINT)

# Brief I (issue 21, items 2-4): the basemap, the tiles and the coordinates on map.html.
_MAP_PAGE = {
    "streets": {"zh": "街道", "en": "streets"},
    "tiles_tianditu": {"zh": "© 天地图", "en": "© Tianditu"},
    "tiles_amap": {"zh": "© 高德地图", "en": "© Amap"},
    "coords_wgs84": {"zh": "坐标（WGS-84）", "en": "coordinates (WGS-84)"},
    "coords_gcj02": {"zh": "坐标（GCJ-02，高德）", "en": "coordinates (GCJ-02, Amap)"},
    "map_zoom_in": {"zh": "放大", "en": "zoom in"},
    "map_zoom_out": {"zh": "缩小", "en": "zoom out"},
    "map_layers": {"zh": "图层", "en": "layers"},
    # The words a road layer's class column uses (matched in both languages whatever the page's).
    "road_words_major": {"zh": "快速路 主干路 主干道 次干路 次干道 高速 国道 省道",
                         "en": "motorway expressway freeway trunk arterial primary secondary tertiary"},
    "road_words_foot": {"zh": "人行 步行 绿道 自行车 非机动车 小径 台阶 步道",
                        "en": "footway footpath pedestrian sidewalk steps cycleway path bridleway"},
}
STRINGS.update(_MAP_PAGE)


def t(key: str, lang: str) -> str:
    """The word for ``key`` in ``lang`` (``zh`` or ``en``; any other language gets English)."""
    entry = STRINGS[key]
    return entry.get(lang, entry[FALLBACK])


def bilingual(key: str, lang: str, *, sep: str = " · ") -> str:
    """``key`` in Chinese then English for a Chinese page (reports are shared beyond the office
    that reads Chinese), in ``lang`` alone otherwise."""
    return bilingual_text(lambda one: t(key, one), lang, sep=sep)


def bilingual_text(text: Callable[[str], str], lang: str, *, sep: str = " · ") -> str:
    """Like :func:`bilingual`, for a text made per language (a sentence with a name in it).

    Parameters
    ----------
    text
        Makes the text in the language it is given.
    lang
        The page's language: Chinese pages get Chinese then English.
    sep
        What stands between the two.

    Returns
    -------
    str

    """
    if lang in _CJK_LANGS:
        return text(lang) + sep + text(FALLBACK)
    return text(lang)


def city_name(city: str, lang: str) -> str:
    """A profile city's name in ``lang`` (``baoji`` -> 宝鸡 / Baoji); an unknown city as given."""
    return t(f"city_{city}", lang) if f"city_{city}" in STRINGS else city


def localized(obj, field: str, lang: str) -> str:
    """A name that comes from data in ``lang``: ``obj.{field}_{lang}`` (or the mapping key),
    the English one when that is missing or empty.

    Parameters
    ----------
    obj
        A :class:`~circles.readers.profiles.Tier`, a profile, a service category, or a mapping
        with ``{field}_zh`` / ``{field}_en`` keys.
    field
        The name's stem, e.g. ``"name"`` or ``"title"``.
    lang
        ``zh`` or ``en``.

    Returns
    -------
    str

    """
    get = obj.get if isinstance(obj, Mapping) else lambda k, d=None: getattr(obj, k, d)
    return get(f"{field}_{lang}") or get(f"{field}_{FALLBACK}") or ""


def html_lang(lang: str) -> str:
    """The page's ``lang`` / ``language`` value (BCP 47) for ``lang``."""
    return _HTML_LANG.get(lang, lang)


def writes_cjk(lang: str) -> bool:
    """Whether pages in ``lang`` are written in Chinese characters (figures then need a CJK font)."""
    return lang in _CJK_LANGS
