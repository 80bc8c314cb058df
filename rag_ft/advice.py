"""RAG, fine-tuning, or both? The Home page's checklist and the rules that turn ticked boxes into advice.

The rules follow the seed article's framework: changing or citable facts call for retrieval; a fixed
format, tone or long repeated instructions call for fine-tuning, but only with a training budget (else
prompting first); both needs together call for both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# key: (question, what a "yes" points to)
QUESTIONS: dict[str, tuple[str, str]] = {
    "changes": ("Does your data change often (new versions, daily updates)?", "rag"),
    "cite": ("Do answers need to cite their sources (document and page)?", "rag"),
    "format": ("Do answers need a fixed output format, tone or house style?", "ft"),
    "long_prompts": ("Are your prompts long with instructions and examples you repeat every time?", "ft"),
    "budget": ("Do you have a training budget: a few hundred good examples, and time or money to train?", "budget"),
    "both": ("Do you need your style AND your facts in the same answers?", "both"),
}
STEPS = ("documents", "chat", "training", "fine_tuning", "compare")  # the pages a recommendation can name


@dataclass(frozen=True)
class Recommendation:
    verdict: str
    why: str
    pages: tuple[str, ...]  # keys of STEPS, in the order to use them


def _points_to(answers: Mapping[str, bool], need: str) -> bool:
    return any(answers.get(key) for key, (_, to) in QUESTIONS.items() if to == need)


def recommend(answers: Mapping[str, bool]) -> Recommendation:
    """The advice for the ticked boxes (``answers``: question key -> ticked)."""
    rag, ft = _points_to(answers, "rag"), _points_to(answers, "ft")
    budget = bool(answers.get("budget"))
    if answers.get("both") or (rag and ft):
        if budget:
            return Recommendation(
                "Both: RAG + a fine-tuned model",
                "Retrieval brings the facts and the page to cite; fine-tuning brings the format and shortens "
                "the prompt. Tune on examples that include retrieved passages, then compare all four setups.",
                ("documents", "training", "fine_tuning", "compare"))
        return Recommendation(
            "RAG now, fine-tuning later",
            "Without a training budget, get the facts right with retrieval and put the format in the prompt; "
            "collect good answers from the chat as training examples for later.",
            ("documents", "chat", "training", "compare"))
    if rag:
        return Recommendation(
            "RAG (retrieval)",
            "Your facts change or must be cited: retrieval reads the current documents at question time, "
            "nothing to retrain, and every answer can point to its page.",
            ("documents", "chat", "compare"))
    if ft and budget:
        return Recommendation(
            "Fine-tuning",
            "A stable behaviour (format, tone) that you now repeat in every prompt is what fine-tuning "
            "learns; it does not keep facts up to date.",
            ("training", "fine_tuning", "compare"))
    if ft:
        return Recommendation(
            "Prompting first",
            "Without a training budget, write the format into the prompt and a few examples; start "
            "collecting examples so a tune becomes cheap later.",
            ("training", "chat"))
    return Recommendation(
        "The base model may be enough",
        "Nothing here calls for retrieval or training: try the base model, and measure before adding either.",
        ("chat", "compare"))
