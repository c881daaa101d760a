"""The sweep's page for people: ``<sweep>/sweep.html`` with the table of ``harness sweep`` and a scatter plot
of domain gain against retention change (marker area: training time; Pareto-optimal variants ringed).
Registered as the ``sweep`` renderer (``harness.renderers`` entry point); the kernel calls it after a sweep."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.artifacts import atomic_write_text, read_json
from harness.errors import HarnessError
from reports.render import _png

__all__ = ["render", "scatter", "render_folder"]

HERE = Path(__file__).resolve().parent


def scatter(table: dict[str, Any]) -> str | None:
    """The gain-vs-forgetting plot as a PNG data URI (None when no row has both figures)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in table["rows"] if r.get("domain_gain") is not None and r.get("retention_change") is not None]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.6))
    seconds = [max(1.0, float((r.get("cost") or {}).get("train_seconds") or 1.0)) for r in rows]
    biggest = max(seconds)
    for r, s in zip(rows, seconds):
        x, y = r["retention_change"], r["domain_gain"]
        ax.scatter([x], [y], s=60 + 540 * s / biggest, alpha=0.55, color="#1a5fb4" if r.get("pareto") else "#8a94a6",
                   edgecolors="#0b3d91" if r.get("pareto") else "none", linewidths=2)
        ax.annotate(r["variant"] + (" *" if r.get("pareto") else ""), (x, y), textcoords="offset points",
                    xytext=(8, 6), fontsize=9)
    ax.axhline(0, color="#5f6b7a", linewidth=0.8)
    ax.axvline(0, color="#5f6b7a", linewidth=0.8)
    ax.set_xlabel("retention change vs base (negative: forgetting)")
    ax.set_ylabel("domain gain vs base (mean over domain suites)")
    ax.set_title("Gain against forgetting (area: training time; * Pareto-optimal)")
    return _png(fig)


def render(table: dict[str, Any], folder: Path) -> Path:
    """Write ``<folder>/sweep.html`` (offline: CSS and the plot inline) and return its path."""
    import jinja2

    from harness.sweep_table import markdown

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)
    env.filters["fmt"] = lambda v, spec: "n/a" if v is None else format(v, spec)
    suites = list(dict.fromkeys(e["suite"] for r in table["rows"] for e in r["effects"]))
    html = env.get_template("sweep.html.j2").render(t=table, suites=suites, plot=scatter(table),
                                                   markdown=markdown(table))
    return atomic_write_text(Path(folder) / "sweep.html", html)


def render_folder(folder: Path) -> Path:
    """Re-render a finished sweep's page from its ``sweep.json``."""
    path = Path(folder) / "sweep.json"
    if not path.is_file():
        raise HarnessError(f"{folder} holds no sweep.json", hint="pass the folder a 'harness sweep' wrote (<run.root>/<id>)")
    return render(read_json(path), Path(folder))
