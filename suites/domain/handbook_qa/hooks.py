"""Reference matching for short generated answers."""

import re

_PUNCT = re.compile(r"[^\w\s$%.]")


def _norm(text: str) -> str:
    text = _PUNCT.sub(" ", text.lower())
    return " ".join(text.replace(",", "").split()).rstrip(".")


def process_results(doc, results):
    answer = _norm(results[0])
    refs = [doc["reference"], *doc.get("aliases", [])]
    return {"match": float(any(_norm(r) and _norm(r) in answer for r in refs))}
