"""Decontamination: training rows that contain evaluation items.

A model trained on a test item scores well on it for the wrong reason, and the gate would promote it on
that. Before training, every SFT row (``harness data``) and every training review prompt (the feedback
stage, whose labels become the preference data) is checked against every document of every suite the
config evaluates, whole suites rather than their ``suite_limits``. What counts of a document is what the
model is asked: the fields its ``doc_to_decontamination_query`` (lm-eval's own key) or else its
``doc_to_text`` template reads (the question, the sentence), or, where the prompt is empty (CrowS-Pairs
scores its two sentences), the fields of ``doc_to_choice``; never the answer options of a multiple-choice
question, which a row teaching the fact rightly contains.

* **exact**: one of a row's turns equals a text field of a document (of at least 5 words), after
  normalization (lower case, punctuation and spacing folded);
* **n-gram**: a row contains a run of ``ngram`` words (default 13, as in the GPT-3 and PaLM
  contamination studies) from a document's text field; a field shorter than that counts when the row
  contains all of it and it has at least 8 words (shorter fields: only an exact match counts).

``data.decontaminate``: ``drop`` (default) removes such rows and counts them in the data card (and in the
feedback stage's prompt split), ``fail`` stops with the first ones named, ``off`` skips the check.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from harness.errors import HarnessError

__all__ = ["Index", "build_index", "index_for", "checked_suites", "refusal", "normalize", "suite_documents",
           "query_fields", "MIN_SHORT_WORDS"]

MIN_SHORT_WORDS = 8
MIN_EXACT_WORDS = 5  # a 2-word answer choice ("40 hours") equal to a turn is not a leaked test item
_FOLD = re.compile(r"[^0-9a-z]+")


def normalize(text: str) -> list[str]:
    return _FOLD.sub(" ", str(text).lower()).split()


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)


def suite_documents(suite: Any, retention_data_dir: Path | None = None) -> list[dict[str, Any]]:
    """Every document of a suite, as the suite's loader reads it (JSONL, CSV, text lines, or its own hook)."""
    from harness.suites import read_docs

    files = suite.data_files(retention_data_dir)
    if not files:
        return []
    loader = suite.spec.task.get("custom_dataset")
    if loader:
        dataset = suite.hook(loader)(data_files=[str(f) for f in files])
        split = next(iter(dataset.values())) if hasattr(dataset, "values") else dataset
        return [dict(row) for row in split]
    fmt = suite.data_format(files)
    if fmt == "csv":
        import pandas as pd

        return [row for f in files for row in pd.read_csv(f).to_dict("records")]
    if fmt == "text":
        return [{"text": line} for f in files for line in Path(f).read_text(encoding="utf-8").splitlines() if line.strip()]
    return read_docs(suite, files)


def query_fields(suite: Any) -> list[str] | None:
    """The document fields a suite asks the model about (None: every text field)."""
    import jinja2
    from jinja2 import meta

    env = jinja2.Environment(autoescape=True)  # parsed for its variable names, never rendered
    for key in ("doc_to_decontamination_query", "doc_to_text", "doc_to_choice"):
        template = suite.spec.task.get(key)
        if isinstance(template, str) and template.strip() and not template.startswith("!function"):
            names = sorted(meta.find_undeclared_variables(env.parse(template)))
            if names:
                return names
    return None


@dataclass
class Index:
    """The n-grams and exact texts of the evaluation documents, each pointing at its first document."""

    ngram: int
    grams: dict[tuple[str, ...], str] = field(default_factory=dict)
    short: dict[tuple[str, ...], str] = field(default_factory=dict)  # fields shorter than ngram (>= 8 words)
    exact: dict[tuple[str, ...], str] = field(default_factory=dict)
    documents: int = 0
    suites: list[str] = field(default_factory=list)

    def add(self, where: str, doc: dict[str, Any], fields: list[str] | None = None) -> None:
        self.documents += 1
        for text in _strings(doc if fields is None else [doc.get(f) for f in fields]):
            words = tuple(normalize(text))
            if not words:
                continue
            if len(words) >= MIN_EXACT_WORDS:
                self.exact.setdefault(words, where)
            if len(words) >= self.ngram:
                for i in range(len(words) - self.ngram + 1):
                    self.grams.setdefault(words[i:i + self.ngram], where)
            elif len(words) >= MIN_SHORT_WORDS:
                self.short.setdefault(words, where)

    def match(self, texts: list[str]) -> str | None:
        """Why these texts (a row's turns) are contaminated, or None."""
        turns = [tuple(normalize(t)) for t in texts]
        for words in turns:
            if words in self.exact:
                return f"the same text as {self.exact[words]}"
        whole = tuple(w for t in turns for w in t)
        n = self.ngram
        for i in range(len(whole) - n + 1):
            hit = self.grams.get(whole[i:i + n])
            if hit:
                return f"a {n}-word passage of {hit}"
        if self.short:
            lengths = sorted({len(k) for k in self.short})
            for size in lengths:
                for i in range(len(whole) - size + 1):
                    hit = self.short.get(whole[i:i + size])
                    if hit:
                        return f"all of a {size}-word item of {hit}"
        return None

    def partition(self, rows: list[Any], texts: Callable[[Any], list[str]]) -> tuple[list[Any], list[tuple[Any, str]]]:
        """``(clean rows, [(contaminated row, why)])``, in the rows' order."""
        kept, found = [], []
        for row in rows:
            why = self.match(texts(row))
            if why is None:
                kept.append(row)
            else:
                found.append((row, why))
        return kept, found


def refusal(found: list[tuple[str, str]], what: str, *, where: str | None = None, hint: str) -> HarnessError:
    """The error of ``data.decontaminate: fail``: how many ``what`` hold evaluation items, the first three named
    (``found``: label, why)."""
    shown = "; ".join(f"{label}: {why}" for label, why in found[:3]) + ("; ..." if len(found) > 3 else "")
    return HarnessError(f"{len(found)} {what} hold evaluation items ({shown})", where=where, hint=hint)


def checked_suites(config: Any) -> dict[str, int]:
    """The suites of ``eval.suites`` that rows are checked against, with their versions (part of the data
    stage's fingerprint and key); empty with ``data.decontaminate: off``. A standard benchmark read from
    ``eval.retention_data_dir`` counts only when that is set (it is not evaluated otherwise either)."""
    if config.data.decontaminate == "off":
        return {}
    from harness.suites import select_suites

    ev = config.eval
    return {s.id: s.version for s in select_suites(list(ev.suites), tuple(ev.suite_dirs))
            if not (s.spec.needs_retention_data and ev.retention_data_dir is None)}


def build_index(suite_ids: list[str], *, suite_dirs: Iterable[Path] = (), retention_data_dir: Path | None = None,
                ngram: int = 13) -> Index:
    """An index over every document of the given suites (ids or names, as ``eval.suites`` gives them)."""
    from harness.suites import select_suites

    index = Index(ngram)
    for suite in select_suites(list(suite_ids), tuple(suite_dirs)):
        fields = query_fields(suite)
        for i, doc in enumerate(suite_documents(suite, retention_data_dir)):
            index.add(f"{suite.id} document {doc.get('id', i)}", doc, fields)
        index.suites.append(suite.id)
    return index


@functools.lru_cache(maxsize=4)
def _cached(suites: tuple[str, ...], suite_dirs: tuple[str, ...], retention: str | None, ngram: int) -> Index:
    return build_index(list(suites), suite_dirs=[Path(d) for d in suite_dirs],
                       retention_data_dir=Path(retention) if retention else None, ngram=ngram)


def index_for(config: Any) -> Index | None:
    """The index over :func:`checked_suites` (built once per process), or None with decontaminate: off."""
    suites = checked_suites(config)
    if not suites:
        return None
    ev = config.eval
    return _cached(tuple(suites), tuple(str(d) for d in ev.suite_dirs),
                   str(ev.retention_data_dir) if ev.retention_data_dir else None, config.data.decontaminate_ngram)
