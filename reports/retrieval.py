"""The report's retrieval-augmented evaluation: each model without and with retrieved passages (the 2x2 of
base / fine-tuned x RAG when both were scored), read from the ``<suite>+rag`` results of :mod:`harness.rag`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.evaluate import load_summary
from harness.rag import rag_table

__all__ = ["rows"]


def rows(eval_dir: Path, labels: dict[str, str]) -> list[dict[str, Any]]:
    """Per model (in the order of ``labels``: fingerprint -> label), suite and metric: without RAG, with RAG
    (estimate, 95 % CI, n) and the retrieval recall of the passages. Empty when no RAG variant was scored."""
    summaries = [load_summary(p.parent) for p in sorted(Path(eval_dir).glob("*/*/*/summary.json")) if p.parts[-4] in labels]
    order = list(labels)
    out = [{**r, "model": labels[r["fingerprint"]]} for r in rag_table(summaries)]
    return sorted(out, key=lambda r: (r["suite"], r["metric"], order.index(r["fingerprint"])))
