"""Standard benchmarks read from local copies (eval.retention_data_dir), in lm-eval's own formats.

Prompts and metrics mirror lm-eval's arc_easy / arc_challenge / mmlu / wikitext tasks, so results
are comparable with published lm-eval numbers on the same data.
"""

import csv
import json
import math
import re
from pathlib import Path

import datasets


def load_arc(data_files=None, **_):
    rows = []
    for path in data_files:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    d = json.loads(line)
                    q = d["question"]
                    rows.append({"id": d["id"], "question": q["stem"], "answerKey": d["answerKey"],
                                 "choices": {"text": [c["text"] for c in q["choices"]],
                                             "label": [c["label"] for c in q["choices"]]}})
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


def load_mmlu(data_files=None, **_):
    per_subject = {}
    for path in sorted(data_files):
        subject = Path(path).name.removesuffix("_test.csv")
        with open(path, encoding="utf-8", newline="") as fh:
            per_subject[subject] = [{"subject": subject, "question": r["question"],
                                     "choices": [r["choice0"], r["choice1"], r["choice2"], r["choice3"]],
                                     "answer": int(r["answer"])} for r in csv.DictReader(fh)]
    # Interleave subjects so --limit samples all of them.
    longest = max(len(v) for v in per_subject.values())
    rows = [per_subject[s][i] for i in range(longest) for s in sorted(per_subject) if i < len(per_subject[s])]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


def load_wikitext(data_files=None, **_):
    """Split wiki.test.raw into articles at top-level headings (' = Title = '), as the HF dataset's pages."""
    text = Path(data_files[0]).read_text(encoding="utf-8")
    pages, current = [], []
    for line in text.splitlines(keepends=True):
        if re.match(r"^ = [^=].* = $", line.rstrip("\n")) and current:
            pages.append("".join(current))
            current = []
        current.append(line)
    if current:
        pages.append("".join(current))
    return datasets.DatasetDict({"test": datasets.Dataset.from_list([{"page": p} for p in pages if p.strip()])})


def wikitext_target(doc):
    from lm_eval.tasks.wikitext.preprocess_wikitext import wikitext_detokenizer

    return wikitext_detokenizer(doc)


def wikitext_results(doc, results):
    ll = results[0]
    text = wikitext_target(doc)
    n_bytes = len(text.encode("utf-8"))
    return {"bpb": -ll / (n_bytes * math.log(2)), "loglikelihood": ll, "bytes": n_bytes,
            "words": len(re.split(r"\s+", text))}


def wikitext_summary(records):
    total_bytes = sum(r["metrics"]["bytes"] for r in records)
    total_words = sum(r["metrics"]["words"] for r in records)
    ll = sum(r["metrics"]["loglikelihood"] for r in records)
    if not total_bytes:
        return {"n": 0, "metrics": {"bits_per_byte": None, "word_perplexity": None}}
    return {"n": len(records), "metrics": {"bits_per_byte": -ll / (total_bytes * math.log(2)),
                                           "word_perplexity": math.exp(-ll / total_words)}}


def _jsonl(data_files):
    for path in data_files:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield json.loads(line)


def load_hellaswag(data_files=None, **_):
    """The official hellaswag_val.jsonl, preprocessed exactly as lm-eval's hellaswag task does."""
    from lm_eval.tasks.hellaswag.utils import preprocess

    rows = [{"ind": d.get("ind"), "activity_label": d["activity_label"],
             "query": preprocess(d["activity_label"] + ": " + d["ctx_a"] + " " + d["ctx_b"].capitalize()),
             "choices": [preprocess(e) for e in d["endings"]], "label": int(d["label"])}
            for d in _jsonl(data_files)]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


def load_winogrande(data_files=None, **_):
    rows = [{"qID": d.get("qID"), "sentence": d["sentence"], "option1": d["option1"], "option2": d["option2"],
             "answer": str(d["answer"])} for d in _jsonl(data_files)]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


def winogrande_text(doc):
    from lm_eval.tasks.winogrande.preprocess_winogrande import doc_to_text

    return doc_to_text(doc)


def winogrande_target(doc):
    from lm_eval.tasks.winogrande.preprocess_winogrande import doc_to_target

    return doc_to_target(doc)


def winogrande_choice(doc):
    from lm_eval.tasks.winogrande.preprocess_winogrande import doc_to_choice

    return doc_to_choice(doc)
