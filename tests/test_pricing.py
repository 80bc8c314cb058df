"""The one price table: training and answering prices, alias / snapshot / fine-tuned resolution."""

import pytest

from rag_ft import pricing


def test_training_prices_resolve_aliases_and_fine_tuned_models():
    assert pricing.training_price("gpt-4.1") == 25.00 and pricing.training_price("gpt-4.1-mini") == 5.00
    assert pricing.training_price("gpt-4o-mini-2024-07-18") == 3.00
    assert pricing.training_price("ft:gpt-4o-mini-2024-07-18:acme::abc123") == 3.00
    assert pricing.training_price("gpt-unknown") is None
    assert pricing.max_training_tokens("gpt-3.5-turbo") == 16_385
    assert pricing.max_training_tokens("gpt-3.5-turbo-0125") == 16_385
    assert pricing.max_training_tokens("gpt-unknown") == pricing.DEFAULT_MAX_TOKENS


def test_inference_prices():
    assert pricing.inference_price("gpt-4.1-mini-2025-04-14") == (0.40, 1.60)
    assert pricing.inference_price("gpt-4.1-2025-04-14") == (2.00, 8.00)
    assert pricing.inference_price("gpt-4.1") == (2.00, 8.00)
    assert pricing.inference_price("ft:gpt-4o-mini-2024-07-18:acme::abc123") == (0.30, 1.20)
    assert pricing.inference_price("llama-3") is None
    assert pricing.answer_price("gpt-4o", "local") is None
    assert pricing.answer_price("gpt-4o", "openai") == (2.50, 10.00)


@pytest.mark.parametrize("model, family", [
    ("gpt-4.1", "gpt-4.1"),
    ("gpt-4.1-mini", "gpt-4.1-mini"),  # the longest family wins
    ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
    ("gpt-4.1-nano-2025-04-14", "gpt-4.1-nano"),
    ("gpt-4o-2024-08-06", "gpt-4o"),
    ("gpt-4o-mini", "gpt-4o-mini"),
    ("ft:gpt-4.1-2025-04-14:acme:support:x1", "gpt-4.1"),
    ("gpt-3.5-turbo-0125", "gpt-3.5-turbo"),
])
def test_one_resolution_for_every_price(model, family):
    row, fine_tuned = pricing.lookup(model)
    assert row is not None and row.family == family and fine_tuned == model.startswith("ft:")


@pytest.mark.parametrize("model", ["gpt-4", "gpt-4.10", "gpt-4omni", "claude-3", "", "ft:llama:x::y"])
def test_unknown_models_have_no_row(model):
    # a family name is matched whole: "gpt-4.10" is not "gpt-4.1", "gpt-4omni" is not "gpt-4o"
    assert pricing.lookup(model)[0] is None and pricing.training_price(model) is None


def test_table_is_dated_and_complete():
    assert pricing.fine_tunable_models()[0] == "gpt-4.1-mini-2025-04-14"
    for row in pricing.PRICES.values():
        assert pricing.lookup(row.snapshot)[0] is row
        assert row.ft_input >= row.input and row.ft_output >= row.output  # fine-tuned models cost more
        assert row.checked >= pricing.PRICES_AS_OF
