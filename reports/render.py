"""Rendering the audit report: charts (matplotlib, inlined as PNG), the HTML (Jinja2, CSS inline: it
opens offline) and the PDF (WeasyPrint, or Chromium where it is installed and asked for)."""

from __future__ import annotations

import base64
import io
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

__all__ = ["SECTIONS", "render_html", "pdf_renderer", "write_pdf", "PDF_RENDERERS"]

HERE = Path(__file__).resolve().parent
SECTIONS = ["Decision", "Model lineage", "Training data", "Evaluation", "Reviewers", "Reward model", "Training curves",
            "Gate rules and evidence", "Environment", "Dataset licenses", "Ledger", "Glossary"]


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _charts(doc: dict[str, Any]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    charts = {}
    bars = []
    for model in doc["evaluation"]:
        for suite, s in sorted(model["suites"].items()):
            for name, m in s["metrics"].items():
                if m.get("estimate") is not None and m.get("ci_low") is not None and name in ("acc", "match"):
                    label = model.get("label") or model["role"]
                    bars.append((f"{suite}\n{name}", label, m["estimate"], m["ci_low"], m["ci_high"]))
    if bars:
        labels = sorted({b[0] for b in bars})
        order = {m.get("label") or m["role"]: i for i, m in enumerate(doc["evaluation"])}
        roles = sorted({b[1] for b in bars}, key=lambda r: (order.get(r, 99), r))
        fig, ax = plt.subplots(figsize=(8, 3.2))
        width = 0.8 / len(roles)
        for i, role in enumerate(roles):
            xs, ys, err = [], [], [[], []]
            for j, label in enumerate(labels):
                b = next((b for b in bars if b[0] == label and b[1] == role), None)
                if b:
                    xs.append(j + i * width)
                    ys.append(b[2])
                    err[0].append(b[2] - b[3])
                    err[1].append(b[4] - b[2])
            ax.bar(xs, ys, width, yerr=err, capsize=3, label=role)
        ax.set_xticks([j + width * (len(roles) - 1) / 2 for j in range(len(labels))], labels, fontsize=7)
        ax.set_ylabel("score (95 % CI)")
        ax.legend(fontsize=7)
        charts["evaluation"] = _png(fig)
    forest = [r for r in doc.get("comparison") or [] if r.get("metric") and r.get("change") is not None
              and r.get("ci_low") is not None and not r.get("distance")]
    if forest:  # one panel per scale, so a change of 0.05 in accuracy is not lost beside one of 5 points
        def unit(r: dict[str, Any]) -> bool:
            return all(abs(v) <= 1 for v in (r.get("incumbent"), r.get("candidate")) if v is not None)

        panels = [(title, [r for r in forest if unit(r) == flag]) for title, flag in
                  (("scores on a 0-1 scale", True), ("other scales: points, log-likelihoods", False))]
        panels = [p for p in panels if p[1]]
        colors = {"better": "#11743b", "worse": "#b3261e"}
        fig, axes = plt.subplots(len(panels), 1, figsize=(8, 0.42 * len(forest) + 1.2 * len(panels)), squeeze=False,
                                 gridspec_kw={"height_ratios": [len(p[1]) + 1 for p in panels]})
        for ax, (title, rows) in zip(axes[:, 0], panels):
            for y, r in enumerate(reversed(rows)):
                ax.errorbar([r["change"]], [y], xerr=[[r["change"] - r["ci_low"]], [r["ci_high"] - r["change"]]],
                            fmt="o", color=colors.get(r.get("verdict"), "#4a5568"), capsize=3)
            ax.axvline(0, color="#1d2433", linewidth=0.8, linestyle="--")
            ax.set_yticks(range(len(rows)), [f"{r['suite']} · {r['metric']}" + ("" if r.get("higher_is_better") is not False
                                                                                else " (lower is better)")
                                             for r in reversed(rows)], fontsize=7)
            ax.set_title(f"final candidate − incumbent, 95 % CI ({title}); green better, red worse", fontsize=8)
            ax.tick_params(axis="x", labelsize=7)
        fig.tight_layout()
        charts["forest"] = _png(fig)
    per = (((doc.get("reviewers") or {}).get("agreement") or {}).get("per_reviewer") or {})
    rated = {name: v for name, v in per.items() if isinstance(v, dict) and v.get("disagreement_rate") is not None}
    if rated:
        fig, ax = plt.subplots(figsize=(8, 0.4 * len(rated) + 1.0))
        names = sorted(rated)
        ax.barh(range(len(names)), [rated[n]["disagreement_rate"] for n in names], color="#4a5568")
        ax.set_yticks(range(len(names)), [f"{n} ({rated[n]['compared']} shared tasks)" for n in names], fontsize=7)
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of shared tasks where the reviewer disagreed with the others' majority", fontsize=7)
        ax.tick_params(axis="x", labelsize=7)
        charts["agreement"] = _png(fig)
    for stage, rows in doc["curves"].items():
        series = [k for k in ("loss", "eval_loss", "reward", "kl", "completions/mean_length") if any(k in r for r in rows)]
        if not series:
            continue
        fig, axes = plt.subplots(1, len(series), figsize=(3 * len(series), 2.4), squeeze=False)
        for ax, key in zip(axes[0], series):
            pts = [(r["step"], r[key]) for r in rows if key in r]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".")
            ax.set_title(f"{stage}: {key}", fontsize=8)
            ax.set_xlabel("step", fontsize=7)
            ax.tick_params(labelsize=7)
        charts[f"curve_{stage}"] = _png(fig)
    return charts


def render_html(doc: dict[str, Any]) -> str:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html", "j2"]))
    env.filters["num"] = lambda v, d=3: "—" if v is None else (f"{v:.{d}f}" if isinstance(v, float) else str(v))
    from reports.evaluation import MIN_CATEGORY_N

    return env.get_template("audit.html.j2").render(doc=doc, charts=_charts(doc), sections=SECTIONS,
                                                    min_category_n=MIN_CATEGORY_N)


PDF_RENDERERS = ("weasyprint", "chromium")


def _chromium() -> str | None:
    for name in (os.environ.get("HARNESS_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _weasyprint_problem() -> str | None:
    """Why WeasyPrint cannot print here (not installed, or the system's Pango is missing), or None."""
    try:
        import weasyprint  # noqa: F401  (loads Pango through cffi: fails here when the library is missing)
    except ImportError:
        return "WeasyPrint is not installed (pip install weasyprint)"
    except OSError as exc:
        return (f"WeasyPrint cannot load the system's Pango library ({str(exc).splitlines()[0][:160]}); "
                "install it with: apt-get install libpango-1.0-0 libpangoft2-1.0-0")
    return None


def pdf_renderer(preferred: str = "weasyprint") -> tuple[str | None, list[str]]:
    """The PDF renderer to use, ``preferred`` first, and a note for each one that is unavailable.

    WeasyPrint is a dependency of the harness (it needs the system's Pango); Chromium is optional and
    used where it is installed and asked for. None when neither can print here.
    """
    if preferred not in PDF_RENDERERS:
        raise HarnessError(f"unknown PDF renderer '{preferred}'", hint=f"use one of: {', '.join(PDF_RENDERERS)}")
    notes = []
    for name in (preferred, *[r for r in PDF_RENDERERS if r != preferred]):
        problem = _weasyprint_problem() if name == "weasyprint" else (
            None if _chromium() else "Chromium is not installed (apt-get install chromium, or set HARNESS_CHROMIUM)")
        if problem is None:
            return name, notes
        notes.append(problem)
    return None, notes


def _weasyprint_pdf(html: Path, tmp: Path) -> None:
    from weasyprint import HTML

    # PDF/UA-1: a tagged PDF (headings, tables, figures' alt text, language) that screen readers can follow
    HTML(filename=str(html.resolve()), base_url=str(html.resolve().parent)).write_pdf(str(tmp), pdf_variant="pdf/ua-1")


def _chromium_pdf(html: Path, tmp: Path) -> None:
    browser = _chromium()
    if browser is None:
        raise HarnessError("writing audit.pdf with Chromium needs Chromium, which is not installed",
                           hint="apt-get install chromium (or set HARNESS_CHROMIUM), or use the weasyprint renderer")
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run([browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
                               f"--user-data-dir={profile}", f"--print-to-pdf={tmp}", html.resolve().as_uri()],
                              capture_output=True, text=True, timeout=180)
        if proc.returncode != 0 or not tmp.is_file():
            raise HarnessError(f"Chromium could not print {html} to PDF: {proc.stderr.strip()[-300:]}")


def write_pdf(html: Path, pdf: Path, renderer: str = "weasyprint") -> Path:
    """Print ``html`` to ``pdf`` (atomically) with ``renderer``: weasyprint or chromium."""
    if renderer not in PDF_RENDERERS:
        raise HarnessError(f"unknown PDF renderer '{renderer}'", hint=f"use one of: {', '.join(PDF_RENDERERS)}")
    tmp = pdf.with_name(f".{pdf.name}.tmp")
    try:
        (_weasyprint_pdf if renderer == "weasyprint" else _chromium_pdf)(html, tmp)
        os.replace(tmp, pdf)
    finally:
        tmp.unlink(missing_ok=True)
    return pdf
