"""Self-contained pages: Leaflet's JS and CSS inlined from an installed package, no network.

Every map page is written this way unless it is asked to load Leaflet from its CDN (``--online``).
The assets come from ``folium-offline`` (a PyPI package that ships the files folium loads from
CDNs, keyed by their URLs), so no third-party file is copied into this repository.
"""

from __future__ import annotations

import re

from ..errors import CirclesError

__all__ = ["asset", "inline_assets", "leaflet_assets"]

LEAFLET_JS = "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js"
LEAFLET_CSS = "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.css"
_SCRIPT = re.compile(r'<script\s+src="(https?://[^"]+)"\s*>\s*</script>')
_LINK = re.compile(r'<link\s+rel="stylesheet"\s+href="(https?://[^"]+)"\s*/?>')


def asset(url: str) -> str:
    """The contents of a CDN asset, from the installed ``folium-offline`` package.

    Parameters
    ----------
    url
        The asset's CDN address as folium writes it, e.g. :data:`LEAFLET_JS`.

    Returns
    -------
    str
        The file's text.

    Raises
    ------
    CirclesError
        When folium-offline is missing or has no copy of ``url``.

    """
    try:
        # folium-offline keeps its copies in one dict keyed by CDN address; it has no public getter.
        from offlinefolium.elements import _res
    except ImportError as err:  # pragma: no cover - a declared dependency
        raise CirclesError("offline pages need the folium-offline package (its copies of Leaflet)",
                           fix="pip install 'folium-offline>=0.20'") from err
    if url not in _res:
        raise CirclesError(f"no offline copy of {url}",
                           fix="draw the page with --online, or report this as a bug")
    return _res[url]


def leaflet_assets() -> tuple[str, str]:
    """Leaflet's JS and CSS as text (for pages written by hand, such as the explorer).

    Returns
    -------
    tuple of str
        ``(js, css)``.

    """
    return asset(LEAFLET_JS), asset(LEAFLET_CSS)


def _safe_script(js: str) -> str:
    # A literal "</script" inside inlined code would end the element early.
    return js.replace("</script", "<\\/script")


def inline_assets(page: str) -> str:
    """Replace every external ``<script src>`` and stylesheet ``<link>`` by inline copies.

    Parameters
    ----------
    page
        An HTML page, e.g. a rendered folium map.

    Returns
    -------
    str
        The same page loading nothing from the internet.

    Raises
    ------
    CirclesError
        When the page references an asset with no offline copy (never silently left online).

    """
    page = _SCRIPT.sub(lambda m: f"<script>{_safe_script(asset(m.group(1)))}</script>", page)
    page = _LINK.sub(lambda m: f"<style>{asset(m.group(1))}</style>", page)
    # Links a reader may click (Leaflet's own attribution) are fine; loads are not.
    left = re.findall(r'<(?:script|img|iframe)[^>]+src="(https?://[^"]+)"|<link[^>]+href="(https?://[^"]+)"',
                      page)
    left = [a or b for a, b in left]
    if left:
        raise CirclesError(f"the page still loads {left[0]} from the internet",
                           fix="report this as a bug; offline pages must not reference online assets")
    return page
