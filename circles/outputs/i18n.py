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
