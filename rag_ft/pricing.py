"""OpenAI prices: one dated table for training and for answering, and one way to find a model's row.

Prices are USD per 1M tokens, standard tier, from openai.com/api/pricing and the fine-tuning guide.
A model id is resolved once, the same way for every price: a fine-tuned model ``ft:<base>:org::id``
is priced from its base; an id is the family's alias (``gpt-4.1``) or the alias followed by ``-`` and a
snapshot or variant (``gpt-4.1-2025-04-14``), the longest family winning (``gpt-4.1-mini-...`` is not
``gpt-4.1``). Local models are not in the table: they cost nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_TOKENS = 65_536  # an unknown OpenAI model: the current fine-tuning limit per example


@dataclass(frozen=True)
class ModelPrice:
    family: str  # the alias, e.g. "gpt-4.1-mini"
    snapshot: str  # the snapshot the fine-tuning API trains, e.g. "gpt-4.1-mini-2025-04-14"
    training: float  # per 1M training tokens
    max_tokens: int  # the most tokens one training example may have (longer ones are truncated)
    input: float  # per 1M input tokens when answering with the base model
    output: float  # per 1M output tokens when answering with the base model
    ft_input: float  # answering with a model fine-tuned from it (fine-tuned models cost more)
    ft_output: float
    checked: str  # the date these prices were read off OpenAI's pages


_ROWS = [  # the order is the training page's model list (its first row is the default)
    ModelPrice("gpt-4.1-mini", "gpt-4.1-mini-2025-04-14", 5.00, 65_536, 0.40, 1.60, 0.80, 3.20, "2025-06-01"),
    ModelPrice("gpt-4.1-nano", "gpt-4.1-nano-2025-04-14", 1.50, 65_536, 0.10, 0.40, 0.20, 0.80, "2025-06-01"),
    ModelPrice("gpt-4.1", "gpt-4.1-2025-04-14", 25.00, 65_536, 2.00, 8.00, 3.00, 12.00, "2025-06-01"),
    ModelPrice("gpt-4o-mini", "gpt-4o-mini-2024-07-18", 3.00, 65_536, 0.15, 0.60, 0.30, 1.20, "2025-06-01"),
    ModelPrice("gpt-4o", "gpt-4o-2024-08-06", 25.00, 65_536, 2.50, 10.00, 3.75, 15.00, "2025-06-01"),
    ModelPrice("gpt-3.5-turbo", "gpt-3.5-turbo-0125", 8.00, 16_385, 0.50, 1.50, 3.00, 6.00, "2025-06-01"),
]
PRICES: dict[str, ModelPrice] = {row.family: row for row in _ROWS}
# the oldest check: what the pages show as "prices as of"
PRICES_AS_OF = min(row.checked for row in _ROWS)


def lookup(model: str) -> tuple[ModelPrice | None, bool]:
    """The table row for a model id (None when unknown) and whether the id is a fine-tuned model."""
    fine_tuned = model.startswith("ft:")
    if fine_tuned:
        model = model.split(":")[1]
    for family in sorted(PRICES, key=len, reverse=True):  # "gpt-4.1-mini" before "gpt-4.1"
        if model == family or model.startswith(family + "-"):
            return PRICES[family], fine_tuned
    return None, fine_tuned


def fine_tunable_models() -> list[str]:
    """The snapshot ids the fine-tuning API trains, in the table's order."""
    return [row.snapshot for row in _ROWS]


def training_price(model: str) -> float | None:
    """USD per 1M training tokens (a fine-tuned model trains at its base's price); None when unknown."""
    row, _ = lookup(model)
    return row.training if row else None


def max_training_tokens(model: str) -> int:
    """The most tokens one training example may have for an OpenAI model."""
    row, _ = lookup(model)
    return row.max_tokens if row else DEFAULT_MAX_TOKENS


def inference_price(model: str) -> tuple[float, float] | None:
    """(input, output) USD per 1M tokens for answering with an OpenAI model id; None when unknown."""
    row, fine_tuned = lookup(model)
    if row is None:
        return None
    return (row.ft_input, row.ft_output) if fine_tuned else (row.input, row.output)


def answer_price(model: str, backend: str) -> tuple[float, float] | None:
    """Price of one model's answers; local models cost nothing here (None)."""
    return inference_price(model) if backend == "openai" else None
