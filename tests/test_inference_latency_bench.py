"""bench/inference_latency.py --quick: every method's rows and ratios to the base, in the table and the JSON."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quick_bench_prints_and_records_each_method_against_the_base(tmp_path):
    out = tmp_path / "latency.json"
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "inference_latency.py"), "--quick", "--json", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=REPO,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {m.group(1).strip(): (float(m.group(3)), float(m.group(5)))
            for m in re.finditer(r"^([a-z0-9]+(?: (?:un)?merged)?)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$",
                                 proc.stdout, re.M)}
    expected = {"base", "lora unmerged", "lora merged", "dora unmerged", "dora merged", "ia3 unmerged", "ia3 merged",
                "prefix unmerged", "reft unmerged"}
    assert expected <= rows.keys() and "prefix merged" not in rows
    assert rows["base"] == (1.0, 1.0)
    assert all(ttft > 0 and tps > 0 for ttft, tps in rows.values())
    assert "latency does not depend on training" in proc.stdout and "prefix: timed unmerged only" in proc.stdout
    result = json.loads(out.read_text())
    assert result["model"] == "builtin:tiny-random" and result["rows"].keys() == rows.keys()
    assert {r["new_tokens"] for r in result["rows"].values()} == {result["prompts"] * result["max_new_tokens"]}
    for name, row in result["rows"].items():
        assert row["tokens_per_s_ratio"] == pytest.approx(row["tokens_per_s"] / result["rows"]["base"]["tokens_per_s"])
        assert len(row["seconds_runs"]) == result["rounds"]
    assert not [n for n in result["notes"] if "identity adapter" in n]  # every merge changed the weights
