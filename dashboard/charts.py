"""Charts of the figures page: pygal drawing SVG on the server, made safe for the page.

Each chart is inline SVG in the page, readable without JavaScript and in print:

- pygal's scripts are off (`js=[]`) and its config `<script>`, its tooltips (which need
  them) and every inline `style` are taken out of the tree, so the page's
  Content-Security-Policy (`style-src 'self'`, `script-src 'self'`) holds unchanged;
- the CSS pygal would have put in a `<style>` element is served from `/figures/charts.css`
  instead (`stylesheet`), its selectors under `.pygal-chart`, so that none of pygal's class
  names (`.title`, `.tooltip`, `.legend`...) touches Bootstrap's;
- the `<svg>` is `role="img"`, named by its `<title>` and described by a `<desc>` through
  `aria-labelledby`; the page puts the same numbers in a table below it;
- values are printed on the bars and the colours are dark enough on white (3:1 at least,
  WCAG 1.4.11): a chart says what it says in black and white too.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

import pygal  # type: ignore[import-untyped]
from markupsafe import Markup
from pygal.style import Style  # type: ignore[import-untyped]

# Importing pygal appends a finder for its map plugins (which the page doesn't use) to
# sys.meta_path; it has only the old find_module, so Python warns (ImportWarning) at every
# later import that reaches it, such as an optional dependency tried and missing.
sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, pygal.PluginImportFixer)]

# Bootstrap Italia's blue, then colours of at least 4.5:1 on white, each unlike the others.
COLOURS = (
    "#0066CC", "#A66300", "#008758", "#5C6F82", "#D9364F", "#7A3E9D", "#1F4E79", "#6B5900",
)  # fmt: skip
STYLE = Style(
    background="#FFFFFF",
    plot_background="#FFFFFF",
    foreground="#1A1A1A",
    foreground_strong="#1A1A1A",
    foreground_subtle="#5C6F82",
    opacity="1",
    opacity_hover="1",
    transition="none",
    colors=COLOURS,
    font_family="'Titillium Web', Geneva, Tahoma, sans-serif",
    title_font_size=18,
    label_font_size=13,
    major_label_font_size=13,
    value_font_size=13,
    legend_font_size=14,
)
_BASE: dict[str, Any] = {
    "style": STYLE,
    "js": [],
    "disable_xml_declaration": True,
    "print_values": True,
    "print_zeroes": False,
    "show_y_guides": True,
    "legend_at_bottom": True,
    "truncate_label": -1,
    "width": 800,
}
_PREFIX = re.compile(r"#chart-[0-9a-f-]+")
SVG = "{http://www.w3.org/2000/svg}"
# The groups pygal's script shows on hover (the bars themselves are "tooltip-trigger").
_TOOLTIPS = frozenset({"tooltip", "tooltip-overlay"})
Formatter = Callable[[float], str]


def _clean(ident: str, title: str, description: str) -> Callable[[Any], Any]:
    """The tree filter: no script, style or tooltip; named and described for screen readers."""

    def apply(root: Any) -> Any:
        for parent in root.iter():
            for child in list(parent):
                # Comments (pygal's credits and the day it drew) have no string tag.
                tag = child.tag if isinstance(child.tag, str) else "comment"
                classes = set((child.get("class") or "").split())
                if tag.removeprefix(SVG) in ("script", "style", "comment") or classes & _TOOLTIPS:
                    parent.remove(child)
        for element in root.iter():
            element.attrib.pop("style", None)
        root.set("id", ident)
        root.set("role", "img")
        root.set("aria-labelledby", f"{ident}-title {ident}-desc")
        root.set("class", "pygal-chart")
        name = next(child for child in root if child.tag in ("title", f"{SVG}title"))
        name.set("id", f"{ident}-title")
        name.text = title
        desc = root.makeelement("desc", {"id": f"{ident}-desc"})
        desc.text = description
        name.addnext(desc) if hasattr(name, "addnext") else root.insert(
            list(root).index(name) + 1, desc
        )
        return root

    return apply


def _render(chart: Any, ident: str, title: str, description: str) -> Markup:
    chart.add_xml_filter(_clean(ident, title, description))
    # pygal escapes every label and value it writes (it builds an XML tree).
    return Markup(chart.render(is_unicode=True))  # noqa: S704


def bars(
    ident: str,
    title: str,
    description: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    horizontal: bool = False,
    stacked: bool = False,
    formatter: Formatter | None = None,
) -> Markup:
    """A bar chart: one bar per label and series (stacked or side by side)."""
    kind = {
        (False, False): pygal.Bar,
        (True, False): pygal.HorizontalBar,
        (False, True): pygal.StackedBar,
        (True, True): pygal.HorizontalStackedBar,
    }[horizontal, stacked]
    height = max(300, 60 + 36 * len(labels) * (1 if stacked else max(1, len(series))))
    chart = kind(
        **_BASE,
        title=title,
        show_legend=len(series) > 1,
        height=height if horizontal else 420,
        x_label_rotation=0 if horizontal or len(labels) < 8 else 45,
        show_minor_x_labels=True,
        **({"value_formatter": formatter} if formatter is not None else {}),
    )
    chart.x_labels = list(labels)
    for name, values in series:
        chart.add(name, list(values))
    return _render(chart, ident, title, description)


@functools.cache
def stylesheet() -> str:
    """The CSS pygal writes into each chart, for as many series as the page draws, once."""
    captured: list[str] = []

    def capture(root: Any) -> Any:
        for element in root.iter():
            tag = element.tag if isinstance(element.tag, str) else ""
            if tag.removeprefix(SVG) == "style" and element.text:
                captured.append(element.text)
        return root

    chart = pygal.Bar(**_BASE)
    for index in range(len(COLOURS)):
        chart.add(str(index), [1])
    chart.add_xml_filter(capture)
    chart.render(is_unicode=True)
    css = _PREFIX.sub(".pygal-chart", "\n".join(captured))
    # Print the charts as drawn, and never wider than the page.
    return css + "\n.pygal-chart{max-width:100%;height:auto}\n"
