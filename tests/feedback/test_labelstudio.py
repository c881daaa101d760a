"""Push -> annotate as two reviewers -> pull -> agreement -> preferences, against a real Label Studio."""

import json
import os
import subprocess
import sys

import pytest

from feedback import preferences, pull, push, server, simulate
from harness.errors import HarnessError

pytestmark = pytest.mark.integration


def _client(ls_data_dir):
    return server.connect(server.credentials(data_dir=ls_data_dir))


def _annotate(client, task_id, user_id, selected=None, overall=None, flags_side=None, rating=3):
    result = []
    if selected:
        result.append({"from_name": "comparison", "to_name": "left,right", "type": "pairwise", "value": {"selected": selected}})
    if overall:
        result.append({"from_name": "overall", "to_name": "prompt", "type": "choices", "value": {"choices": [overall]}})
    if flags_side:
        result.append({"from_name": f"flags_{flags_side}", "to_name": flags_side, "type": "choices",
                       "value": {"choices": ["Harmful"]}})
    result.append({"from_name": "rating", "to_name": "prompt", "type": "rating", "value": {"rating": rating}})
    return client.annotations.create(id=task_id, result=result, completed_by=user_id, lead_time=5.0)


def test_round_trip_with_two_reviewers(review_config, ls_data_dir, tmp_path):
    first = push.run(review_config)
    assert (first.created, first.already_there) == (4, 0)
    again = push.run(review_config)
    assert (again.created, again.already_there) == (0, 4), "pushing twice must not duplicate tasks"
    client = _client(ls_data_dir)
    assert len(list(client.tasks.list(project=first.project_id))) == 4
    empty = pull.run(review_config)  # tasks without annotations are counted, not an error
    assert empty.annotations == 0 and empty.counts["task_without_annotations"] == 4
    tasks = [json.loads(line) for line in first.tasks_path.read_text().splitlines()]
    task_data = {t.id: t.data for t in client.tasks.list(project=first.project_id, fields="all")}
    for t in tasks:  # reviewers see no model names and no side mapping
        assert set(task_data[t["task_id"]]) == {"prompt", "left", "right", "guidelines", "task_key"}
    users = [client.users.create(email=f"{n}-{tmp_path.name}@example.com", username=f"{n}-{tmp_path.name}") for n in ("ann", "bob")]
    side = {t["prompt_id"]: (t["task_id"], t["candidate_side"], "left" if t["candidate_side"] == "right" else "right")
            for t in tasks}
    # p1: both prefer the candidate (ann flags it); p2: split; p3: both say tie; p4: only ann, prefers incumbent.
    _annotate(client, side["p1"][0], users[0].id, selected=side["p1"][1], flags_side=side["p1"][1], rating=4)
    _annotate(client, side["p1"][0], users[1].id, selected=side["p1"][1], rating=5)
    _annotate(client, side["p2"][0], users[0].id, selected=side["p2"][1])
    _annotate(client, side["p2"][0], users[1].id, selected=side["p2"][2])
    _annotate(client, side["p3"][0], users[0].id, overall="Tie")
    _annotate(client, side["p3"][0], users[1].id, overall="Tie")
    _annotate(client, side["p4"][0], users[0].id, selected=side["p4"][2], rating=2)

    result = pull.run(review_config)
    assert result.annotations == 7 and result.new == 7
    rows = [json.loads(line) for line in result.annotations_path.read_text().splitlines()]
    got = sorted((r["prompt_id"], r["annotator"].split("-")[0], r["choice"]) for r in rows)
    assert got == [("p1", "ann", "candidate"), ("p1", "bob", "candidate"), ("p2", "ann", "candidate"),
                   ("p2", "bob", "incumbent"), ("p3", "ann", "tie"), ("p3", "bob", "tie"), ("p4", "ann", "incumbent")]
    flagged = [r for r in rows if r["flags"]["candidate"]]
    assert len(flagged) == 1 and flagged[0]["prompt_id"] == "p1" and flagged[0]["rating"] == 4
    assert not any(r["simulated"] for r in rows)
    assert pull.run(review_config).new == 0, "pulling again adds nothing"

    exported = preferences.run(review_config)
    prefs = [json.loads(line) for line in exported.preferences_path.read_text().splitlines()]
    by_prompt = {t["prompt_id"]: t for t in tasks}
    assert {p["provenance"]["prompt_id"]: (p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in prefs} == {
        "p1": (by_prompt["p1"]["candidate"]["response"], by_prompt["p1"]["incumbent"]["response"]),
        "p4": (by_prompt["p4"]["incumbent"]["response"], by_prompt["p4"]["candidate"]["response"]),
    }
    assert prefs[0]["prompt"] == [{"role": "user", "content": by_prompt[prefs[0]["provenance"]["prompt_id"]]["prompt"]}]
    s = exported.summary
    assert s["resolved"]["candidate"] == 1 and s["resolved"]["incumbent"] == 1 and s["resolved"]["tie"] == 1
    assert s["dropped"]["no_majority"] == 1
    assert s["win_rate"]["estimate"] == pytest.approx((1 + 0 + 0.5) / 3)
    assert s["unsafe_rate"]["flagged"] == 1 and s["unsafe_rate"]["n"] == 4
    agreement = json.loads((exported.preferences_path.parent / "agreement.json").read_text())
    assert agreement["annotations"] == 7 and len(agreement["annotators"]) == 2


def test_scripted_reviewers_and_restart_between_pulls(review_config, ls_data_dir):
    pushed = push.run(review_config)
    sim = simulate.run(review_config)
    assert sim.annotations == 8 and len(sim.reviewers) == 2
    assert simulate.run(review_config).annotations == 0, "scripted reviewers do not annotate twice"
    first = pull.run(review_config)
    assert first.annotations == 8
    rows = [json.loads(line) for line in first.annotations_path.read_text().splitlines()]
    assert all(r["simulated"] for r in rows)
    # Blind: every careful (not quick) verdict is the rubric applied to what Label Studio shows, left/right.
    import random

    from feedback.rubric import ASPECTS, judge_pair

    shown = {t.id: t.data for t in _client(ls_data_dir).tasks.list(project=pushed.project_id, fields="all")}
    metas = {t["task_key"]: t for t in map(json.loads, pushed.tasks_path.read_text().splitlines())}
    careful = [r for r in rows if r["rationale"] != "(quick judgement)"]
    assert careful and all(set(r["aspects"]) == set(ASPECTS) for r in careful)
    for r in careful:
        meta, data = metas[r["task_key"]], shown[r["task_id"]]
        j = judge_pair(meta, data["left"], data["right"], random.Random(0), 0.0)
        to_model = {meta["candidate_side"]: "candidate", "tie": "tie", "both_unacceptable": "both_unacceptable"}
        assert to_model.get(j["choice"], "incumbent") == r["choice"]
    # Kill the server, bring it back, add one review, pull: nothing lost, nothing duplicated.
    server.stop(ls_data_dir)
    with pytest.raises(HarnessError, match="no Label Studio server is reachable"):
        pull.run(review_config)
    server.serve(data_dir=ls_data_dir, timeout=300)
    client = _client(ls_data_dir)
    task = json.loads(first.annotations_path.read_text().splitlines()[0])
    extra_user = client.users.create(email="late@example.com", username="late")
    _annotate(client, task["task_id"], extra_user.id, overall="Both unacceptable")
    second = pull.run(review_config)
    assert second.annotations == 9 and second.new == 1
    ids = [json.loads(line)["annotation_id"] for line in second.annotations_path.read_text().splitlines()]
    assert len(ids) == len(set(ids))
    summary = preferences.run(review_config).summary
    assert summary["simulated"] is True
    assert set(summary["aspects"]) == set(ASPECTS) and summary["aspects"]["facts"]["win_rate"]["n"] >= 1


def test_rating_only_review(review_config, ls_data_dir, tmp_path):
    cfg = review_config.model_copy(update={"feedback": review_config.feedback.model_copy(
        update={"template": "rating", "project": f"ratings {tmp_path.name}"})})
    pushed = push.run(cfg)
    assert pushed.created == 8, "one task per response"
    client = _client(ls_data_dir)
    shown = [t.data for t in client.tasks.list(project=pushed.project_id, fields="all")]
    assert all(set(d) == {"prompt", "response", "guidelines", "task_key"} for d in shown)
    assert simulate.run(cfg).annotations == 16
    pulled = pull.run(cfg)
    rows = [json.loads(line) for line in pulled.annotations_path.read_text().splitlines()]
    assert pulled.annotations == 16 and all(r["rating"] in range(1, 6) and r["choice"] is None for r in rows)
    assert {r["rated"] for r in rows} == {"candidate", "incumbent"}
    exported = preferences.run(cfg)
    summary = exported.summary
    assert summary["mode"] == "rating" and sum(summary["resolved"].values()) == 4 and summary["simulated"]
    # Unpaired thumbs-up/down for KTO: mean rating >= 4 desirable, <= 2 undesirable, the middle left out.
    path = exported.preferences_path.parent / "unpaired.jsonl"
    both = summary["unpaired"]["desirable"] > 0 and summary["unpaired"]["undesirable"] > 0
    assert summary["unpaired"]["written"] is both and path.exists() is both  # KTO needs both kinds
    unpaired = [json.loads(line) for line in path.read_text().splitlines()] if both else []
    assert not both or summary["unpaired"]["desirable"] + summary["unpaired"]["undesirable"] == len(unpaired) <= 8
    for row in unpaired:
        mean = row["provenance"]["mean_rating"]
        assert row["label"] is (mean >= 4) and (mean >= 4 or mean <= 2)
        assert row["completion"][0]["role"] == "assistant" and row["prompt"][0]["role"] == "user"


def test_repush_keeps_server_sides_and_ignores_stale_reviews(review_config, ls_data_dir, tmp_path):
    cfg = review_config.model_copy(update={"feedback": review_config.feedback.model_copy(
        update={"project": f"repush {tmp_path.name}"})})
    first = push.run(cfg)
    sides = {json.loads(line)["task_key"]: json.loads(line)["candidate_side"] for line in first.tasks_path.read_text().splitlines()}
    simulate.run(cfg)
    pull.run(cfg)
    # Another seed would shuffle differently; tasks already on the server keep the sides they were shown with.
    reseeded = cfg.model_copy(update={"run": cfg.run.model_copy(update={"seed": 7})})
    push.run(reseeded)
    client = _client(ls_data_dir)
    shown = {t.data["task_key"]: t.data for t in client.tasks.list(project=first.project_id, fields="all")}
    for line in first.tasks_path.read_text().splitlines():
        row = json.loads(line)
        assert row["candidate_side"] == sides[row["task_key"]]
        assert shown[row["task_key"]][row["candidate_side"]] == row["candidate"]["response"]
    # A narrower push: reviews of tasks no longer in this run's tasks.jsonl must not leak into the export.
    narrow = cfg.model_copy(update={"feedback": cfg.feedback.model_copy(update={"limit": 2})})
    push.run(narrow)
    pulled = pull.run(narrow)
    assert pulled.annotations == 4 and pulled.counts["task_not_pushed_by_this_run"] == 2
    assert preferences.run(narrow).summary["tasks_reviewed"] == 2


def test_personal_access_token_and_legacy_token(ls_data_dir, monkeypatch):
    url = server.status(ls_data_dir).url
    legacy = _client(ls_data_dir)  # the local server's admin uses a legacy token
    pat = legacy.tokens.create().token  # a personal access token (JWT refresh token)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", pat)
    assert server.connect(server.credentials(url)).users.whoami().email == server.ADMIN_EMAIL


def test_wrong_token_and_unreachable_server(ls_data_dir, monkeypatch):
    url = server.status(ls_data_dir).url
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "not-the-token-0123456789")
    with pytest.raises(HarnessError, match="rejected the API token") as exc:
        server.connect(server.credentials(url))
    assert "not-the-token" not in str(exc.value)
    with pytest.raises(HarnessError, match="not reachable"):
        server.connect(server.Credentials("http://127.0.0.1:9", "x"))
    monkeypatch.delenv("LABEL_STUDIO_API_KEY")
    with pytest.raises(HarnessError, match="LABEL_STUDIO_API_KEY is not set"):
        server.credentials(url)


def test_template_rejected_by_label_studio(ls_data_dir):
    from feedback._project import get_or_create_project

    with pytest.raises(HarnessError, match="refused to create the project"):
        get_or_create_project(_client(ls_data_dir), "bad template", "<View><Pairwise name='x' toName='nowhere'/></View>", 1)


def test_malformed_prompt_file(review_config, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"prompt": \n')
    with pytest.raises(HarnessError, match=f"{bad}:2: line is not valid JSON"):
        push.read_prompts(bad)


def test_token_never_written(review_config, ls_data_dir, tmp_path):
    secrets_ = json.loads((ls_data_dir / "secrets.json").read_text())
    token = secrets_["token"]
    assert oct((ls_data_dir / "secrets.json").stat().st_mode & 0o777) == "0o600"
    assert oct(ls_data_dir.stat().st_mode & 0o777) == "0o700"  # the database holds the tokens: owner only
    info = server.status(ls_data_dir)
    env = dict(v.split("=", 1) for v in open(f"/proc/{info.pid}/environ").read().split("\0") if "=" in v)
    assert env["SSRF_PROTECTION_ENABLED"] == "true" and info.url.startswith("http://127.0.0.1:")
    # it listens on the loopback address only (not 0.0.0.0 or ::)
    port = f"{int(info.url.rsplit(':', 1)[1]):04X}"
    listening = [line.split()[1] for name in ("/proc/net/tcp", "/proc/net/tcp6") if os.path.exists(name)
                 for line in open(name).read().splitlines()[1:] if line.split()[3] == "0A"]
    assert f"0100007F:{port}" in listening
    assert not [a for a in listening if a.endswith(f":{port}") and set(a.split(":")[0]) == {"0"}]
    push.run(review_config)
    simulate.run(review_config)
    pull.run(review_config)
    preferences.run(review_config)
    out = subprocess.run([sys.executable, "-m", "harness.cli", "feedback", "status",
                          f"feedback.data_dir={ls_data_dir}"], capture_output=True, text=True)
    assert token not in out.stdout + out.stderr
    for root, _, files in os.walk(tmp_path / "runs"):
        for name in files:
            assert token not in open(os.path.join(root, name), errors="replace").read(), name
    log = (ls_data_dir / "server.log").read_text(errors="replace")
    assert token not in log and secrets_["password"] not in log


def test_on_policy_pairs_through_label_studio(review_config, ls_data_dir):
    """K sampled answers per prompt become sample-vs-sample and sample-vs-incumbent tasks; reviewers label
    them; every labeled pair trains, only sample-vs-incumbent judgements count for the win rate."""
    cfg = review_config.model_copy(update={"feedback": review_config.feedback.model_copy(update={
        "on_policy": True, "samples": 3, "temperature": 1.5, "budget": 12, "prompt_set": "training",
        "heldout_fraction": 0.0,
        "project": f"{review_config.feedback.project[:38]} onpol"})})
    pushed = push.run(cfg)
    tasks = [json.loads(line) for line in pushed.tasks_path.read_text().splitlines()]
    kinds = {t["kind"] for t in tasks}
    assert pushed.created == len(tasks) <= 12 and kinds <= {"sample_vs_sample", "sample_vs_incumbent"} and kinds
    for t in tasks:
        assert t["candidate"]["response"] != t["incumbent"]["response"]
        if t["kind"] == "sample_vs_sample":
            assert t["incumbent"]["fingerprint"] == t["candidate"]["fingerprint"]
    # sampled once, cached: pushing again samples nothing new and adds no task
    assert push.run(cfg).created == 0
    simulate.run(cfg)
    pull.run(cfg)
    exported = preferences.run(cfg)
    judged = sum(1 for t in tasks if t["kind"] == "sample_vs_incumbent")
    assert exported.summary["win_rate"]["n"] <= judged
    prefs = [json.loads(line) for line in exported.preferences_path.read_text().splitlines()]
    assert {p["provenance"]["kind"] for p in prefs} <= kinds


def test_labeling_rounds_choose_by_the_ensemble_and_resume_without_pushing_twice(review_config, ls_data_dir):
    """feedback.rounds: a random seed round, then pairs ranked by a reward-model ensemble trained on the
    labels so far; every round goes through Label Studio; replaying the rounds pushes nothing new."""
    from feedback.rounds import run_rounds
    from harness.schemas import LabelingRounds, read_artifact

    cfg = review_config.model_copy(update={"feedback": review_config.feedback.model_copy(update={
        "on_policy": True, "samples": 3, "temperature": 1.5, "budget": 9, "rounds": 3, "select": "uncertainty",
        "ensemble": 3, "prompt_set": "training", "heldout_fraction": 0.0, "simulate_noise": [0.0, 0.0],
        "project": f"{review_config.feedback.project[:38]} rounds"})})
    created = []

    def label(pool, indices):
        pushed = push.run(cfg, indices=indices, pool=pool)
        created.append(pushed.created)
        simulate.run(cfg)
        return pull.run(cfg)

    pulled = run_rounds(cfg, label)
    rounds = read_artifact(push.feedback_dir(cfg) / "rounds.json", LabelingRounds)
    assert rounds.planned == [3, 3, 3] and [r["strategy"] for r in rounds.rounds] == [
        "random (seed round)", "uncertainty", "uncertainty"]
    assert [r["pairs_sent"] for r in rounds.rounds] == [3, 3, 3] and created == [3, 3, 3]
    assert rounds.rounds[1]["labeled_pairs_before"] <= 3 and rounds.rounds[2]["labeled_pairs_before"] <= 6
    assert rounds.pool_pairs >= 9 and pulled.annotations == 18  # 9 tasks, 2 reviewers each
    tasks = [json.loads(line) for line in (push.feedback_dir(cfg) / "tasks.jsonl").read_text().splitlines()]
    assert len({t["task_key"] for t in tasks}) == 9
    created.clear()
    run_rounds(cfg, label)  # a resumed cycle: the same choices, nothing pushed twice
    assert created == [0, 0, 0]
    assert read_artifact(push.feedback_dir(cfg) / "rounds.json", LabelingRounds).rounds == rounds.rounds


def _logs_in(url: str, email: str, password: str) -> bool:
    """Label Studio's own login form: a redirect away from /user/login means the password worked."""
    import httpx

    with httpx.Client(base_url=url, follow_redirects=False, timeout=30) as web:
        web.get("/user/login/")
        csrf = web.cookies.get("csrftoken")
        resp = web.post("/user/login/", data={"email": email, "password": password, "csrfmiddlewaretoken": csrf},
                        headers={"Referer": f"{url}/user/login/", "X-CSRFToken": csrf})
        return resp.status_code in (301, 302) and "/user/login" not in resp.headers.get("location", "")


def _own_token(url: str, email: str, password: str) -> str:
    """A reviewer's own API token, as they would copy it from Account & Settings (logged in as them)."""
    import httpx

    with httpx.Client(base_url=url, follow_redirects=True, timeout=30) as web:
        web.get("/user/login/")
        csrf = web.cookies.get("csrftoken")
        web.post("/user/login/", data={"email": email, "password": password, "csrfmiddlewaretoken": csrf},
                 headers={"Referer": f"{url}/user/login/", "X-CSRFToken": csrf})
        resp = web.get("/api/current-user/token")
        resp.raise_for_status()
        return resp.json()["token"]


def test_each_reviewer_gets_an_account_and_their_labels_carry_it(review_config, ls_data_dir, capsys, monkeypatch):
    from feedback import accounts
    from harness.cli import main

    url = server.status(ls_data_dir).url
    config_args = [f"feedback.data_dir={ls_data_dir}", "model.base=builtin:tiny-random"]
    assert main(["feedback", "reviewers", "add", "Ana Lima", "Ana@Example.org", *config_args]) == 0
    out = capsys.readouterr().out
    password = out.split("one-time password for ana@example.org: ")[1].split()[0]
    assert _logs_in(url, "ana@example.org", password) and not _logs_in(url, "ana@example.org", password + "x")
    admin_password = json.loads((ls_data_dir / "secrets.json").read_text())["password"]
    assert password != admin_password
    listed = {r.email: r for r in accounts.list_reviewers(review_config)}
    assert "ana@example.org" in listed and listed["ana@example.org"].name == "Ana Lima"
    assert not any(e.startswith("scripted-reviewer-") or e == server.ADMIN_EMAIL for e in listed)
    assert main(["feedback", "reviewers", "add", "Ana Again", "ana@example.org", *config_args]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["feedback", "reviewers", "add", "Bo", "not-an-email", *config_args]) == 2
    assert main(["feedback", "reviewers", "add", "Bo", "scripted-reviewer-9@harness.local", *config_args]) == 2
    assert "is reserved" in capsys.readouterr().err
    # Ana labels a task as herself; the pulled row is hers, not the admin's
    pushed = push.run(review_config)
    client = _client(ls_data_dir)
    task_id = next(iter(json.loads(line) for line in pushed.tasks_path.read_text().splitlines()))["task_id"]
    _annotate(client, task_id, listed["ana@example.org"].id, selected="left")
    rows = [json.loads(line) for line in pull.run(review_config).annotations_path.read_text().splitlines()]
    assert [r["annotator"] for r in rows] == ["ana@example.org"] and not rows[0]["simulated"]
    # the same server reached as a server of one's own (feedback.url) with Ana's token: the harness now
    # works under Ana's login, so her labels are no reviewer's and are left out, counted
    token = _own_token(url, "ana@example.org", password)
    remote = review_config.model_copy(update={"feedback": review_config.feedback.model_copy(
        update={"url": url, "token_env": "HARNESS_TEST_ANA_TOKEN"})})
    monkeypatch.setenv("HARNESS_TEST_ANA_TOKEN", token)
    result = pull.run(remote)
    assert result.annotations == 0 and result.counts["skipped_shared_admin_account"] == 1
    assert "ana@example.org" in capsys.readouterr().err
    # the password was shown once and is kept nowhere
    for path in [*ls_data_dir.rglob("*.json"), *ls_data_dir.rglob("*.log"), *(review_config.layout().dir).rglob("*")]:
        if path.is_file():
            assert password not in path.read_text(errors="replace"), path
