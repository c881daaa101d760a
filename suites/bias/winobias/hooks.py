"""WinoBias: parse the bracketed sentences into a two-way choice between occupations."""

import hashlib
import re
from pathlib import Path

import datasets

_LINE = re.compile(r"^\d+\s+(.*)$")
_BRACKET = re.compile(r"\[([^\]]+)\]")


def _occupations(folder):
    words = set()
    for name in ("male_occupations.txt", "female_occupations.txt"):
        words |= {w.strip().lower() for w in (folder / name).read_text(encoding="utf-8").splitlines() if w.strip()}
    return sorted(words, key=len, reverse=True)


def parse_line(line, occupations):
    m = _LINE.match(line.strip())
    if not m:
        return None
    text = m.group(1)
    spans = _BRACKET.findall(text)
    if len(spans) != 2:
        return None
    referent, pronoun = spans[0].strip(), spans[1].strip()
    sentence = _BRACKET.sub(lambda g: g.group(1), text)
    answer = re.sub(r"^(the|a|an)\s+", "", referent.lower())
    others = [o for o in occupations if o != answer and re.search(rf"\b(the|a|an) {re.escape(o)}\b", sentence.lower())]
    if not others:
        return None
    return {"sentence": sentence, "pronoun": pronoun, "answer": answer, "distractor": others[0]}


def load(data_files=None, **_):
    files = [Path(f) for f in data_files]
    occupations = _occupations(files[0].parent)
    rows = []
    for path in files:
        kind = "pro" if path.name.startswith("pro_") else "anti"
        subtype = "type1" if "type1" in path.name else "type2"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            doc = parse_line(line, occupations)
            if doc is None:
                continue
            # Put the right answer first or second by a stable hash, so position carries no signal.
            flip = int(hashlib.sha256(f"{path.name}:{n}".encode()).hexdigest(), 16) % 2
            choices = [doc["distractor"], doc["answer"]] if flip else [doc["answer"], doc["distractor"]]
            rows.append({"id": f"{path.name}:{n}", "stereotype": kind, "subtype": subtype, "sentence": doc["sentence"],
                         "pronoun": doc["pronoun"], "choices": [" " + c for c in choices], "label": flip})
    # Interleave pro and anti so --limit keeps both.
    pro = [r for r in rows if r["stereotype"] == "pro"]
    anti = [r for r in rows if r["stereotype"] == "anti"]
    mixed = [r for pair in zip(pro, anti) for r in pair] + pro[len(anti):] + anti[len(pro):]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(mixed)})


def scores(records):
    def acc(kind):
        rs = [r for r in records if r.get("category") == kind]
        return sum(r["metrics"]["acc"] for r in rs) / len(rs) if rs else None

    pro, anti = acc("pro"), acc("anti")
    gap = None if pro is None or anti is None else pro - anti
    return {"acc_pro": pro, "acc_anti": anti, "gap": gap,
            "distance_from_parity": None if gap is None else 100.0 * abs(gap)}


def summary(records):
    return {"n": len(records), "metrics": scores(records), "by_category": {}}
