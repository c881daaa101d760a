"""What the gate's rules read: the two models' evaluation results and the reviewers' summary, each
checked to be about these two models (fingerprints) and the current suite versions, and hashed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.artifacts import read_jsonl, sha256_file
from harness.schemas import EvalSummary, FeedbackSummary, artifact_dict

__all__ = ["Evidence", "suites_with_results"]


def suites_with_results(folder: Path) -> dict[str, Path]:
    return {p.parent.parent.name + "/" + p.parent.name: p.parent for p in sorted(folder.glob("*/*/summary.json"))}


@dataclass
class Evidence:
    """The evidence for one decision; ``inputs`` collects the SHA-256 of every file a rule used."""

    eval_dir: Path
    feedback_dir: Path
    candidate: str
    incumbent: str
    cand_fp: str
    inc_fp: str
    known: dict[str, Any]
    seed: int
    n_resamples: int
    suite_dirs: tuple[Path, ...] = ()
    sft: str | None = None  # the SFT-only candidate: the other side of the alignment review
    sft_fp: str | None = None
    allow_simulated: bool = False  # the policy's: may scripted reviews satisfy feedback rules
    inputs: dict[str, str] = field(default_factory=dict)
    _rows: dict[str, list[dict]] = field(default_factory=dict)
    _reviews: dict[str, tuple[dict | None, str | None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.cand_suites = suites_with_results(self.eval_dir / self.cand_fp)
        self.inc_suites = suites_with_results(self.eval_dir / self.inc_fp)

    def record(self, *paths: str | Path) -> None:
        for p in paths:
            self.inputs[str(p)] = sha256_file(p)

    def evaluated_suites(self) -> list[str]:
        return sorted(set(self.cand_suites) | set(self.inc_suites))

    def suite_files(self, suite: str) -> list[str]:
        return [str(d / f) for d in (self.inc_suites.get(suite), self.cand_suites.get(suite)) if d
                for f in ("summary.json", "samples.jsonl")]

    def suite_problem(self, suite: str) -> str | None:
        """Why a suite's results cannot be compared (missing, another model, an old suite version), or None."""
        for side, folder, fp, ref in (("candidate", self.cand_suites.get(suite), self.cand_fp, self.candidate),
                                      ("incumbent", self.inc_suites.get(suite), self.inc_fp, self.incumbent)):
            if folder is None:
                return f"no {suite} results for the {side} ({ref}, fingerprint {fp}) under {self.eval_dir}: run harness eval"
            summary = artifact_dict(folder / "summary.json", EvalSummary)
            if summary.get("model_fingerprint") != fp:
                return (f"{folder} holds results for model fingerprint {summary.get('model_fingerprint')}, "
                        f"not the {side}'s {fp}")
            if suite in self.known and summary.get("suite_version") != self.known[suite].version:
                return (f"{side} results for {suite} are from suite version {summary.get('suite_version')}; "
                        f"the current version is {self.known[suite].version}: re-run harness eval")
        return None

    def comparison(self, suite: str) -> list[dict]:
        """The paired comparison rows of one suite (computed once for all rules)."""
        from harness.compare import compare_suite

        if suite not in self._rows:
            try:
                self._rows[suite] = compare_suite(self.inc_suites[suite], self.cand_suites[suite], seed=self.seed,
                                                  n_resamples=self.n_resamples, suite_dirs=self.suite_dirs)
            except Exception:
                self._rows[suite] = []
                raise
        return self._rows[suite]

    def review_files(self, against: str = "incumbent") -> tuple[Path, Path]:
        folder = self.feedback_dir / "alignment" if against == "sft" else self.feedback_dir
        return folder / "summary.json", folder / "tasks.jsonl"

    def review(self, against: str = "incumbent") -> tuple[dict | None, str | None]:
        """``(summary, None)``, or ``(None, why the review evidence cannot be used)``; read once each."""
        if against not in self._reviews:
            self._reviews[against] = self._read_review(against)
        return self._reviews[against]

    def _read_review(self, against: str) -> tuple[dict | None, str | None]:
        summary_path, tasks_path = self.review_files(against)
        other, other_fp = (("the SFT-only candidate", self.sft_fp) if against == "sft" else ("incumbent", self.inc_fp))
        if not summary_path.is_file() or not tasks_path.is_file():
            return None, (f"missing evidence: no review of the candidate against {other} in {summary_path.parent} "
                          "(the cycle's final review writes it)")
        tasks = read_jsonl(tasks_path)
        wrong = {t["candidate"].get("fingerprint") for t in tasks} - {self.cand_fp} | \
            {t["incumbent"].get("fingerprint") for t in tasks} - {other_fp}
        if wrong:
            return None, (f"the reviews compared other models (fingerprints {', '.join(sorted(map(str, wrong)))}), "
                          f"not candidate {self.cand_fp} vs {other} {other_fp}")
        return artifact_dict(summary_path, FeedbackSummary), None
