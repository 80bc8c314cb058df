"""How long a run will take, said before it starts: questions x configurations x seconds per answer.

Seconds per answer are measured on this machine when earlier runs stored answers with the same model (the
median of their total time, so one slow first answer does not skew it), else a default per backend.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rag_ft.evaluation.configs import RunConfig
from rag_ft.evaluation.store import EvalStore

# Defaults when nothing was measured yet. local: issue #13 measured a full run of the sample set (48 questions x
# 4 configurations, 96-token answers) at about 40 minutes on 2 CPU cores, i.e. about 12 s an answer.
# openai: a short gpt-4.1-mini answer plus the network, typically 2-4 s; the LLM judge is one more such call.
DEFAULT_ANSWER_S = {"local": 12.0, "openai": 3.0}
RECENT_RUNS = 10  # the machine or the settings may have changed: only recent runs count


@dataclass(frozen=True)
class Estimate:
    seconds: float
    answers: int
    measured: bool  # every configuration's time per answer comes from earlier answers on this machine

    def text(self) -> str:
        """"about 8 min", said next to the Run button."""
        if self.answers <= 0:
            return ""
        if self.seconds < 60:
            return "under a minute"
        return f"about {math.ceil(self.seconds / 60)} min"


def measured_answer_seconds(store: EvalStore, recent: int = RECENT_RUNS) -> dict[tuple[str, bool], float]:
    """Median stored total time of an answer per (model label, retrieval on), over the most recent runs."""
    times: dict[tuple[str, bool], list[float]] = {}
    for info in store.list_runs()[:recent]:  # newest first
        for rec in store.results(info.id):
            if rec.error or rec.total_s <= 0 or rec.config_index >= len(info.configs):
                continue
            cfg = info.configs[rec.config_index]
            times.setdefault((cfg.model, cfg.rag), []).append(rec.total_s)
    return {key: statistics.median(values) for key, values in times.items()}


def estimate_run(
    configs: Sequence[RunConfig],
    n_questions: int,
    measured: Mapping[tuple[str, bool], float],
    backends: Mapping[str, str],
    judge: bool = False,
) -> Estimate:
    """The time a run of ``n_questions`` through ``configs`` should take on this machine.

    A configuration without a measurement of its own borrows one of the same model with retrieval the other way,
    then the backend's default.
    """
    total, all_measured = 0.0, True
    for cfg in configs:
        per_answer = measured.get((cfg.model, cfg.rag)) or measured.get((cfg.model, not cfg.rag))
        if per_answer is None:
            all_measured = False
            per_answer = DEFAULT_ANSWER_S.get(backends.get(cfg.model, "local"), DEFAULT_ANSWER_S["local"])
        if judge:
            per_answer += DEFAULT_ANSWER_S["openai"]
        total += per_answer * n_questions
    return Estimate(total, n_questions * len(configs), all_measured and bool(configs))
