"""A static HTML report: sections of text, figures (PNG files beside index.html) and tables."""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

_STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222;padding:0 1em}
h1{border-bottom:2px solid #444}h2{margin-top:2em;border-bottom:1px solid #bbb}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#f3f3f3}
.note{color:#555;font-size:.9em}"""


@dataclass
class Section:
    title: str
    text: str = ""
    figures: list = field(default_factory=list)      # (file name, caption)
    tables: list = field(default_factory=list)       # (caption, header, rows)


@dataclass
class Report:
    """Collects sections and writes ``out/index.html``. Figures are saved by :meth:`figure`."""

    title: str
    out: Path
    sections: list = field(default_factory=list)

    def __post_init__(self):
        self.out = Path(self.out)
        self.out.mkdir(parents=True, exist_ok=True)

    def section(self, title: str, text: str = "") -> Section:
        s = Section(title, text)
        self.sections.append(s)
        return s

    def figure(self, section: Section, fig, name: str, caption: str = ""):
        """Save a matplotlib figure as ``name``.png beside the report and attach it to ``section``."""
        import matplotlib.pyplot as plt

        fname = f"{name}.png"
        fig.savefig(self.out / fname, dpi=100, bbox_inches="tight")
        plt.close(fig)
        section.figures.append((fname, caption))

    def write(self) -> Path:
        parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
                 f"<style>{_STYLE}</style></head><body><h1>{html.escape(self.title)}</h1>"]
        for s in self.sections:
            parts.append(f"<h2>{html.escape(s.title)}</h2>")
            if s.text:
                parts.append("".join(f"<p>{html.escape(p)}</p>" for p in s.text.split("\n\n")))
            for caption, header, rows in s.tables:
                parts.append(f"<p class='note'>{html.escape(caption)}</p><table><tr>"
                             + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>")
                for row in rows:
                    parts.append("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>")
                parts.append("</table>")
            for fname, caption in s.figures:
                parts.append(f"<figure><img src='{fname}' alt='{html.escape(caption)}'>"
                             f"<figcaption class='note'>{html.escape(caption)}</figcaption></figure>")
        parts.append("</body></html>")
        path = self.out / "index.html"
        path.write_text("\n".join(parts))
        return path


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)
