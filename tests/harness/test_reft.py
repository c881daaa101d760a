"""ReFT (LoReFT) interventions: the equation, orthonormality, save/load, generation and scoring with them."""

import json
from pathlib import Path

import pytest
import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM

from harness import reft
from harness.config import EvalConfig
from harness.errors import HarnessError
from harness.generate import sample_responses
from harness.models import ADAPTER_META, fingerprint, load_model, load_tokenizer, resolve
from harness.prefix_lm import SharedPrefixHFLM
from harness.reft import LoReFT
from harness.scoring import SharedBase, vllm_model_args
from tests.conftest import random_adapter
from tests.harness.test_generate import PROMPTS


@pytest.fixture(scope="module")
def talking_base(tmp_path_factory) -> str:
    """A plain model folder that answers with words (the bare tiny model answers blank lines): builtin:tiny-random
    with conftest's random LoRA adapter merged in."""
    from peft import PeftModel

    out = tmp_path_factory.mktemp("talking")
    adapter = random_adapter(out / "adapter")
    spec = resolve("builtin:tiny-random")
    merged = PeftModel.from_pretrained(load_model(spec), adapter).merge_and_unload()
    merged.save_pretrained(out / "model")
    load_tokenizer(spec).save_pretrained(out / "model")
    return str(out / "model")


def _random_reft(out: Path, *, positions: str = "all", layers="all", seed: int = 0, scale: float = 2.0,
                 base: str = "builtin:tiny-random"):
    """Interventions on ``base`` with large random W and b (a model that differs from its base), saved as
    a ReFT folder; returns the folder and the model carrying them."""
    spec = resolve(base)
    torch.manual_seed(seed)
    model = load_model(spec).eval()
    reft.attach(model, rank=4, layers=layers, positions=positions)
    with torch.no_grad():
        for module in model.reft.interventions.values():
            module.source.weight.normal_(0, scale)
            module.source.bias.normal_(0, scale)
    reft.save(model, out)
    load_tokenizer(spec).save_pretrained(out)
    (out / ADAPTER_META).write_text(json.dumps({"base": base, "method": "reft"}))
    return out, model


def _batch():
    tok = load_tokenizer(resolve("builtin:tiny-random"))
    return tok(["The quick brown fox jumps", "Water boils at 100 degrees Celsius at sea level."],
               return_tensors="pt", padding=True)


def _logits(model, batch):
    with torch.no_grad():
        return model(**batch).logits


def test_the_edit_is_h_plus_r_transposed_times_w_h_plus_b_minus_r_h_by_hand():
    module = LoReFT(3, 1, trainable=False)
    with torch.no_grad():
        module.rotation.weight.copy_(torch.tensor([[1.0, 0.0, 0.0]]))  # R: one orthonormal row
        module.source.weight.copy_(torch.tensor([[0.0, 2.0, 0.0]]))  # W
        module.source.bias.copy_(torch.tensor([1.0]))  # b
    h = torch.tensor([[3.0, 4.0, 5.0], [1.0, 0.0, -1.0]])
    # R h = 3, W h + b = 9: h + R^T (9 - 3) = [9, 4, 5];  R h = 1, W h + b = 1: h + R^T 0 = h
    assert torch.equal(module(h), torch.tensor([[9.0, 4.0, 5.0], [1.0, 0.0, -1.0]]))


def test_the_edit_matches_the_equation_for_random_parameters_and_starts_at_zero():
    torch.manual_seed(0)
    module = LoReFT(16, 4)
    h = torch.randn(2, 5, 16)
    assert torch.allclose(module(h), h, atol=1e-6)  # W = R, b = 0: a fresh intervention changes nothing
    with torch.no_grad():
        module.source.weight.normal_()
        module.source.bias.normal_()
    R, W, b = (t.detach().double() for t in (module.rotation.weight, module.source.weight, module.source.bias))
    expected = torch.stack([torch.stack([v + R.T @ (W @ v + b - R @ v) for v in row]) for row in h.double()])
    assert torch.allclose(module(h).double(), expected, atol=1e-5)
    assert not torch.allclose(module(h), h, atol=1e-2)


def _block_output(model, batch, block: int):
    """What block ``block`` hands on (the next block's input), edited or not."""
    seen = []
    blocks = reft.decoder_blocks(model)
    handle = blocks[block + 1].register_forward_pre_hook(lambda _m, args, kwargs: seen.append(
        (args[0] if args else kwargs["hidden_states"]).detach().clone()), with_kwargs=True)
    try:
        with torch.no_grad():
            model(**batch)
    finally:
        handle.remove()
    return seen[0]


@pytest.mark.parametrize("positions", ["all", "first:2"])
def test_the_hook_edits_the_chosen_block_output_at_the_chosen_positions(tmp_path, positions):
    _, model = _random_reft(tmp_path / "r", layers=[0], positions=positions)
    # two sequences packed without padding, as padding-free training batches are: positions restart at 0
    batch = {"input_ids": torch.tensor([[5, 17, 23, 9, 41, 7, 3]]), "position_ids": torch.tensor([[0, 1, 2, 0, 1, 2, 3]])}
    edited = _block_output(model, batch, 0)
    interventions = reft.detach(model)
    plain = _block_output(model, batch, 0)
    expected = interventions.interventions["0"](plain)
    if positions == "first:2":  # tokens 0, 1 of each sequence
        keep = torch.tensor([True, True, False, True, True, False, False])
        expected = torch.where(keep[None, :, None], expected, plain)
        assert torch.equal(edited[0, ~keep], plain[0, ~keep])
    assert torch.allclose(edited, expected, atol=1e-6)
    assert not torch.allclose(edited, plain, atol=1e-3)


@pytest.mark.slow
def test_training_changes_only_the_interventions_and_r_stays_orthonormal_and_reloads_exactly(tmp_path):
    spec = resolve("builtin:tiny-random")
    torch.manual_seed(0)
    model = load_model(spec)
    base_before = {n: p.detach().clone() for n, p in model.named_parameters()}
    reft.attach(model, rank=4)
    trained = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    assert trained and all(n.startswith("reft.") for n in trained)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-2, weight_decay=0.0)
    batch = _batch()
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    rotations = [m.rotation.weight.detach().clone() for m in model.reft.interventions.values()]
    model.train()
    for _ in range(5):
        loss = model(**batch, labels=labels).loss
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    for n, p in model.named_parameters():
        if n in base_before:
            assert torch.equal(p, base_before[n]), n
        else:
            assert not torch.equal(p.detach(), trained[n]), f"{n} did not train"
    for old, module in zip(rotations, model.reft.interventions.values()):
        R = module.rotation.weight.detach()
        assert not torch.allclose(R, old, atol=1e-4)  # R moved ...
        assert torch.allclose(R @ R.T, torch.eye(4), atol=1e-5)  # ... and its rows stayed orthonormal
    expected = _logits(model, batch)
    assert not torch.allclose(expected, _logits(load_model(spec).eval(), batch), atol=1e-3)

    folder = tmp_path / "reft"
    reft.save(model, folder)
    load_tokenizer(spec).save_pretrained(folder)
    (folder / ADAPTER_META).write_text(json.dumps({"base": "builtin:tiny-random", "method": "reft"}))
    config = json.loads((folder / "reft_config.json").read_text())
    assert config == {"format_version": 1, "type": "loreft", "rank": 4, "layers": [0, 1], "positions": "all",
                      "hidden_size": 64, "dropout": 0.0}
    loaded_spec = resolve(str(folder))
    assert loaded_spec.kind == "reft" and loaded_spec.base_spec.ref == "builtin:tiny-random"
    assert "ReFT interventions" in loaded_spec.describe() and "rank 4, 2 layers" in loaded_spec.describe()
    assert load_tokenizer(loaded_spec).pad_token is not None
    loaded = load_model(loaded_spec).eval()
    assert torch.equal(_logits(loaded, batch), expected)  # the in-memory trained model, exactly
    assert not any(p.requires_grad for p in loaded.parameters())
    trainable = load_model(loaded_spec, is_trainable=True).eval()
    assert torch.allclose(_logits(trainable, batch), expected, atol=1e-5)
    assert {n for n, p in trainable.named_parameters() if p.requires_grad} == set(trained)
    # the fingerprint covers the intervention weights
    first = fingerprint(loaded_spec)
    assert first != fingerprint(spec)
    with torch.no_grad():
        model.reft.interventions["1"].source.bias.add_(0.5)
    reft.save(model, folder)
    assert fingerprint(resolve(str(folder))) != first


@pytest.mark.slow
def test_batched_left_padded_generation_equals_one_prompt_at_a_time(tmp_path, talking_base):
    """Left padding shifts every prompt in a batch: edits by position must still land on the same tokens."""
    base = sample_responses(resolve(talking_base), PROMPTS, samples=1, temperature=0, max_new_tokens=8)
    for positions in ("all", "first:6"):
        folder, _ = _random_reft(tmp_path / positions.replace(":", "_"), positions=positions, scale=1.0, base=talking_base)
        spec = resolve(str(folder))
        alone = [sample_responses(spec, [p], samples=1, temperature=0, max_new_tokens=8)[0] for p in PROMPTS]
        batched = sample_responses(spec, PROMPTS, samples=1, temperature=0, max_new_tokens=8, batch_size=3)
        assert batched == alone, positions
        assert len({a[0] for a in alone}) > 4, positions  # answers differ by prompt: the order is checked
        assert alone != base, positions  # the interventions change the answers


@pytest.mark.parametrize("positions", ["all", "first:3"])
def test_shared_prefix_scoring_equals_hflm_with_interventions(tmp_path, positions):
    folder, _ = _random_reft(tmp_path / "r", positions=positions)
    spec = resolve(str(folder))
    model, tok = load_model(spec).eval(), load_tokenizer(spec)
    pairs = [(f"Question {i}: which colour is the sky on a clear day?\nAnswer:", f" {c}")
             for i in range(3) for c in ("blue", "green as grass", "a deep shade of red at noon")]
    requests = [Instance(request_type="loglikelihood", doc={}, arguments=p, idx=i) for i, p in enumerate(pairs)]
    kw = {"pretrained": model, "tokenizer": tok, "batch_size": 4, "device": "cpu", "max_length": 128}
    expected = HFLM(**kw).loglikelihood(requests, disable_tqdm=True)
    got = SharedPrefixHFLM(**kw).loglikelihood(requests, disable_tqdm=True)
    assert [lp for lp, _ in got] == pytest.approx([lp for lp, _ in expected], abs=1e-4)
    base = HFLM(**{**kw, "pretrained": load_model(spec.base_spec).eval()}).loglikelihood(requests, disable_tqdm=True)
    assert max(abs(a[0] - b[0]) for a, b in zip(base, expected)) > 1e-2


def test_a_shared_base_attaches_and_takes_off_interventions(tmp_path):
    folder, _ = _random_reft(tmp_path / "r")
    spec, base = resolve(str(folder)), resolve("builtin:tiny-random")
    batch = _batch()
    alone = _logits(load_model(spec).eval(), batch)
    shared = SharedBase(EvalConfig(dtype="float32", device="cpu"))
    assert torch.equal(_logits(shared.take(spec), batch), alone)
    assert torch.equal(_logits(shared.take(base), batch), _logits(load_model(base).eval(), batch))
    assert torch.equal(_logits(shared.take(spec), batch), alone)


def test_refusals(tmp_path):
    folder, _ = _random_reft(tmp_path / "r")
    spec = resolve(str(folder))
    with pytest.raises(HarnessError, match="vLLM cannot run ReFT"):
        vllm_model_args(spec, EvalConfig(backend="vllm"))
    with pytest.raises(HarnessError, match="ReFT interventions for a causal language model"):
        load_model(spec, task="sequence-classification")
    (folder / ADAPTER_META).unlink()
    with pytest.raises(HarnessError, match="does not name its base model"):
        resolve(str(folder))
    with pytest.raises(HarnessError, match="positions must be 'all' or 'first:N'"):
        reft.parse_positions("last:3")
    with pytest.raises(HarnessError, match=r"ReFT layers \[5\] do not exist: the model has 2 blocks"):
        reft.attach(load_model(resolve("builtin:tiny-random")), layers=[0, 5])
