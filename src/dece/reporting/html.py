"""One self-contained HTML page: inline CSS, tables, and the PNG plots embedded as base64 data URIs
(no scripts, no external assets: the file can be mailed or opened offline)."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from dece.reporting.tables import Table

CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: 13px; }
th, td { border: 1px solid #bbb; padding: 3px 8px; text-align: right; }
th { background: #eef; }
th.group { text-align: center; }
td:first-child, th:first-child { text-align: left; }
p.note { font-size: 12px; color: #555; margin-top: -.8em; }
img { max-width: 100%; border: 1px solid #ddd; margin: .4em 0; }
"""


def data_uri(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(png).read_bytes()).decode("ascii")


def render_html(title: str, sections: list[tuple[str, list[Table]]], plots: dict[str, dict[str, Path]],
                intro: str = "") -> str:
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{e(title)}</title>", f"<style>{CSS}</style></head><body>", f"<h1>{e(title)}</h1>"]
    if intro:
        out.append(f"<p>{e(intro)}</p>")
    for name, tables in sections:
        out.append(f"<h2>{e(name)}</h2>")
        out += [t.to_html() for t in tables]
    if plots:
        out.append("<h2>Plots</h2>")
        for run, kinds in plots.items():
            out.append(f"<h3>{e(run)}</h3>")
            for kind, path in kinds.items():
                out.append(f'<figure><img alt="{e(run)} {e(kind)}" src="{data_uri(path)}"></figure>')
    out.append("</body></html>")
    return "\n".join(out) + "\n"
