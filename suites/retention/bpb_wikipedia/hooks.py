"""BOLD Wikipedia passages for bits-per-byte: a fixed sample of 40 passages per domain."""

import json
import math
import random
from pathlib import Path

import datasets

PER_DOMAIN = 40


def load(data_files=None, **_):
    per_domain = []
    for path in sorted(data_files):
        domain = Path(path).name.removesuffix("_wiki.json")
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        passages = []
        for group, people in sorted(data.items()):
            for name, sentences in sorted(people.items()):
                text = " ".join(s.strip() for s in sentences if s.strip())
                if len(text) >= 200:
                    passages.append({"id": f"{domain}/{group}/{name}", "domain": domain, "group": group, "text": text[:1500]})
        per_domain.append(random.Random(0).sample(passages, min(PER_DOMAIN, len(passages))))
    # Interleave domains so --limit keeps all of them.
    rows = [d[i] for i in range(PER_DOMAIN) for d in per_domain if i < len(d)]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


def process_results(doc, results):
    ll = results[0]
    n_bytes = len(doc["text"].encode("utf-8"))
    return {"bpb": -ll / (n_bytes * math.log(2)), "loglikelihood": ll, "bytes": n_bytes}


def summary(records):
    total_bytes = sum(r["metrics"]["bytes"] for r in records)
    if not total_bytes:
        return {"n": 0, "metrics": {"bits_per_byte": None}}
    bpb = -sum(r["metrics"]["loglikelihood"] for r in records) / (total_bytes * math.log(2))
    return {"n": len(records), "metrics": {"bits_per_byte": bpb}, "by_category": {}}
