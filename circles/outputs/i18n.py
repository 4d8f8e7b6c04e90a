"""The words of maps, the explorer and reports, in Chinese and English."""

from __future__ import annotations

__all__ = ["STRINGS", "t"]

STRINGS: dict[str, dict[str, str]] = {
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
}


def t(key: str, lang: str) -> str:
    """The word for ``key`` in ``lang`` (``zh`` or ``en``)."""
    entry = STRINGS[key]
    return entry.get(lang, entry["en"])
