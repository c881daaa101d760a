from harness.generate import sample_responses
from harness.models import resolve
from tests.conftest import random_adapter

PROMPTS = ["Hi", "What is the refund window for a damaged item bought online last month?", "Name a colour.",
           "Explain, in two sentences, how to reset a password when the recovery e-mail is no longer read.",
           "2+2?", "Which form do I file for travel expenses, and who signs it?", "Say yes.",
           "List three things a new employee should read in their first week at the office, and why."]


def test_batched_greedy_answers_are_those_of_one_prompt_at_a_time_in_prompt_order(tmp_path):
    """Prompts of mixed lengths, batched by length and padded on the left, get the answers each gets alone."""
    spec = resolve(str(random_adapter(tmp_path / "adapter")))
    alone = [sample_responses(spec, [p], samples=1, temperature=0, max_new_tokens=12)[0] for p in PROMPTS]
    batched = sample_responses(spec, PROMPTS, samples=1, temperature=0, max_new_tokens=12, batch_size=3)
    assert batched == alone
    assert len({a[0] for a in alone}) > 4  # the answers differ from prompt to prompt: the order is checked


def test_samples_are_drawn_again_alike_with_the_same_seed(tmp_path):
    spec = resolve(str(random_adapter(tmp_path / "adapter")))
    first = sample_responses(spec, PROMPTS[:4], samples=3, temperature=1.0, seed=5, max_new_tokens=8, batch_size=2)
    again = sample_responses(spec, PROMPTS[:4], samples=3, temperature=1.0, seed=5, max_new_tokens=8, batch_size=2)
    assert first == again and all(len(r) == 3 for r in first)
    assert first != sample_responses(spec, PROMPTS[:4], samples=3, temperature=1.0, seed=6, max_new_tokens=8, batch_size=2)
