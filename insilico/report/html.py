"""A static HTML report: a summary, a table of contents, and sections that each ask a question, show figures
(PNG files beside index.html) and tables, state a takeaway and link to their data and code.

The page is self-contained (inline style, no scripts or external resources) and readable at 100% zoom: one
column of at most 60em, figures at their natural size up to the column width, tables that wrap their cells.
"""
from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..validation import ArgumentError, check_choice

_STYLE = """body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;color:#222;padding:0 1em;
line-height:1.45}h1{border-bottom:2px solid #444}h2{margin-top:2.2em;border-bottom:1px solid #bbb}
img{max-width:100%;height:auto;border:1px solid #eee;margin:.5em 0}figure{margin:1em 0}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em;max-width:100%}
td,th{border:1px solid #ccc;padding:.25em .6em;vertical-align:top;overflow-wrap:anywhere}
th{background:#f3f3f3;text-align:left}td.num{text-align:right;white-space:nowrap}
.note{color:#555;font-size:.9em}.question{font-style:italic;font-size:1.05em}
.takeaway{background:#f4f8fb;border-left:4px solid #4a7fb0;padding:.5em .8em}
.links{font-size:.9em;color:#444}nav ol{columns:2;font-size:.95em}"""

LINK_KINDS = ("data", "code", "experiment")
MISSING = "—"          # how a number that does not exist (NaN) is printed


@dataclass
class Section:
    """One section of a report.

    question: the one sentence the section asks; takeaway: one or two sentences of what the results say;
    summary: the one sentence the report's summary gives for this section (default: the takeaway);
    links: (kind, label, href) with kind "data", "code" or "experiment"; seconds: how long it took to make.
    """

    title: str
    text: str = ""
    figures: list = field(default_factory=list)      # (file name, caption)
    tables: list = field(default_factory=list)       # (caption, header, rows)
    question: str = ""
    takeaway: str = ""
    summary: str = ""
    links: list = field(default_factory=list)        # (kind, label, href)
    seconds: float | None = None

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-") or "section"

    def link(self, kind: str, label: str, href: str):
        """Add a link to the section's data (a file beside the report), code or full-scale experiment."""
        check_choice("kind", kind, LINK_KINDS)
        if not isinstance(label, str) or not label or not isinstance(href, str) or not href:
            raise ArgumentError(f"label and href must be non-empty strings; got label={label!r}, href={href!r}")
        if (kind, label, href) not in self.links:
            self.links.append((kind, label, href))


@dataclass
class Report:
    """Collects sections and writes ``out/index.html``. Figures are saved by :meth:`figure`.

    summary: paragraphs (separated by blank lines) opening the report, before the per-section findings."""

    title: str
    out: Path
    sections: list = field(default_factory=list)
    summary: str = ""

    def __post_init__(self):
        if not isinstance(self.title, str) or not self.title.strip():
            raise ArgumentError(f"title must be a non-empty string; got {self.title!r}")
        if not isinstance(self.out, (str, Path)):
            raise ArgumentError(f"out must be a directory path; got {type(self.out).__name__} {self.out!r}")
        self.out = Path(self.out)
        self.out.mkdir(parents=True, exist_ok=True)

    def section(self, title: str, text: str = "", question: str = "") -> Section:
        if not isinstance(title, str) or not title.strip():
            raise ArgumentError(f"title must be a non-empty string; got {title!r}")
        s = Section(title, text, question=question)
        self.sections.append(s)
        return s

    def figure(self, section: Section, fig, name: str, caption: str = ""):
        """Save a matplotlib figure as ``name``.png beside the report and attach it to ``section``."""
        import matplotlib.pyplot as plt

        if not re.fullmatch(r"[A-Za-z0-9_.-]+", str(name)):
            raise ArgumentError(f"name must be a file name of letters, digits, '_', '.' and '-'; got {name!r}")
        if not isinstance(section, Section) or not hasattr(fig, "savefig"):
            raise ArgumentError(f"figure takes a Section from Report.section and a matplotlib Figure; got "
                                f"{type(section).__name__} and {type(fig).__name__}")
        fname = f"{name}.png"
        fig.savefig(self.out / fname, dpi=100, bbox_inches="tight")
        plt.close(fig)
        section.figures.append((fname, caption))

    def _anchors(self) -> list:
        seen: dict[str, int] = {}
        out = []
        for s in self.sections:
            a = s.anchor
            seen[a] = seen.get(a, 0) + 1
            out.append(a if seen[a] == 1 else f"{a}-{seen[a]}")
        return out

    def write(self) -> Path:
        anchors = self._anchors()
        esc = html.escape
        head = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' "
                f"content='width=device-width, initial-scale=1'><title>{esc(self.title)}</title><style>{_STYLE}"
                f"</style></head><body><h1>{esc(self.title)}</h1>")
        parts = [head]
        if self.summary or self.sections:
            parts.append("<section id='summary'><h2>Summary</h2>" + _paragraphs(self.summary))
            if self.sections:
                parts.append("<table><tr><th>section</th><th>time</th><th>finding</th></tr>")
                for s, a in zip(self.sections, anchors):
                    t = MISSING if s.seconds is None else f"{s.seconds:.1f} s"
                    parts.append(f"<tr><td><a href='#{a}'>{esc(s.title)}</a></td><td class='num'>{t}</td>"
                                 f"<td>{esc(s.summary or s.takeaway)}</td></tr>")
                parts.append("</table>")
            parts.append("</section>")
            parts.append("<nav id='contents'><h2>Contents</h2><ol>"
                         + "".join(f"<li><a href='#{a}'>{esc(s.title)}</a></li>"
                                   for s, a in zip(self.sections, anchors)) + "</ol></nav>")
        for s, a in zip(self.sections, anchors):
            parts.append(f"<section id='{a}'><h2>{esc(s.title)}</h2>")
            if s.question:
                parts.append(f"<p class='question'>Question: {esc(s.question)}</p>")
            parts.append(_paragraphs(s.text))
            for caption, header, rows in s.tables:
                parts.append(_table(caption, header, rows))
            for fname, caption in s.figures:
                parts.append(f"<figure><img src='{esc(fname)}' alt='{esc(caption or fname)}'>"
                             f"<figcaption class='note'>{esc(caption)}</figcaption></figure>")
            if s.takeaway:
                parts.append(f"<p class='takeaway'><b>Takeaway.</b> {esc(s.takeaway)}</p>")
            if s.links:
                groups = []
                for kind, what in (("data", "Data"), ("code", "Code"), ("experiment", "At full scale")):
                    items = [f"<a href='{esc(href)}'>{esc(label)}</a>" for k, label, href in s.links if k == kind]
                    if items:
                        groups.append(f"{what}: " + ", ".join(items))
                parts.append("<p class='links'>" + " · ".join(groups) + "</p>")
            parts.append("<p class='note'><a href='#contents'>contents</a></p></section>")
        parts.append("</body></html>")
        path = self.out / "index.html"
        path.write_text("\n".join(parts))
        return path


def _paragraphs(text: str) -> str:
    return "".join(f"<p>{html.escape(p)}</p>" for p in text.split("\n\n") if p.strip())


def _table(caption, header, rows) -> str:
    out = [f"<p class='note'>{html.escape(caption)}</p><table><tr>"
           + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(
            f"<td class='num'>{html.escape(fmt(v))}</td>" if _is_number(v) else f"<td>{html.escape(fmt(v))}</td>"
            for v in row) + "</tr>")
    out.append("</table>")
    return "".join(out)


def _is_number(v) -> bool:
    import numpy as np

    return isinstance(v, (int, float, np.number)) and not isinstance(v, bool)


def fmt(v, spec: str = ".3g") -> str:
    """A table cell or number in text: floats with ``spec``, a NaN or infinite float as "—" (no such number)."""
    import numpy as np

    if isinstance(v, (float, np.floating)):
        return f"{float(v):{spec}}" if math.isfinite(float(v)) else MISSING
    return str(v)
