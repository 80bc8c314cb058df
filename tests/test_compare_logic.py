"""What the Compare page decides, tested without Streamlit: summary verdicts and their question counts, the
table/chart/facts it shows, the configuration form, the time estimate, and timings that exclude model loading."""

import time
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from rag_ft.evaluation import (
    AnswerRecord,
    EvalQuestion,
    EvalStore,
    Evaluator,
    RunConfig,
    RunOptions,
    plain_summary,
    summary_table,
)
from rag_ft.evaluation import configs as cf
from rag_ft.evaluation import workflow as wf
from rag_ft.evaluation.estimate import DEFAULT_ANSWER_S, Estimate, estimate_run, measured_answer_seconds
from rag_ft.evaluation.report import MIN_QUESTIONS, answer_facts, chart_rows, expected_answers, table_rows
from rag_ft.models.catalogue import ModelChoice


@pytest.fixture
def store(settings):
    s = EvalStore(settings.db_path)
    yield s
    s.close()


def run_with(store: EvalStore, n: int, total_s: tuple[float, float] = (1.0, 3.0)) -> tuple[Any, list[AnswerRecord]]:
    """A stored run of n answerable questions (known pages) through Base and Base + RAG.

    Base: F1 0.2. Base + RAG: F1 0.6, the expected page at rank 1 for 3 questions in 4 (rank 9 otherwise).
    """
    set_id = store.create_set("S", [EvalQuestion(f"Q{i}?", "A", "d.pdf", [1]) for i in range(n)])
    run_id = store.create_run(set_id, [RunConfig("Base", "m"), RunConfig("Base + RAG", "m", rag=True, k=3)],
                              RunOptions(style_pattern=""))
    for i, q in enumerate(store.questions(set_id)):
        store.save_result(run_id, AnswerRecord(0, q.id, "B", metrics={"f1": 0.2}, total_s=total_s[0]))
        rank = 1 if i % 4 else 9
        store.save_result(run_id, AnswerRecord(1, q.id, "A", metrics={
            "f1": 0.6, "doc_rank": rank, "page_rank": rank, "page_rank_near": rank, "retrieval_applies": True,
            "page_applies": True}, total_s=total_s[1]))
    info = store.get_run(run_id)
    return info, store.results(run_id)


def test_summary_concludes_with_enough_questions_and_says_how_many(store):
    info, records = run_with(store, 12)
    text = " ".join(plain_summary(info, summary_table(info, records)))
    assert "too few" not in text
    assert "With m, RAG raised token F1 from 0.20 to 0.60 (12 questions)." in text
    assert "Base + RAG: retrieval put an expected page in the top 3 for 75% of 12 questions with known pages" in text
    assert "right document: 75% of 12" in text
    assert "mean answer time was 1.0 s without RAG and 3.0 s with it (12 answers each)" in text


def test_summary_refuses_to_conclude_from_three_questions(store):
    info, records = run_with(store, 3)
    lines = plain_summary(info, summary_table(info, records))
    text = " ".join(lines)
    assert lines[0].startswith("Only 3 questions answered per configuration: too few to conclude")
    assert "raised" not in text and "lowered" not in text and "%" not in text  # counts, no verdicts or shares
    assert "token F1 was 0.20 without RAG and 0.60 with it, on only 3 questions: too few to conclude" in text
    assert "for 2 of 3 questions with known pages; only 3 questions: too few to conclude" in text
    assert MIN_QUESTIONS == 10


def test_table_chart_and_facts(store):
    info, records = run_with(store, 2)
    rows = summary_table(info, records)
    rows[1]["cost"] = 0.0001234567
    table = table_rows(rows)
    assert [r["Configuration"] for r in table] == ["Base", "Base + RAG"]
    assert table[1]["Page MRR"] == pytest.approx(0.556) and table[1]["Cost per answer ($)"] == 0.000123
    assert table[0]["Page hit@k"] is None and "LLM judgement: groundedness (1-5)" not in table[0]  # absent metric
    quality = chart_rows(rows, "fraction")
    assert {"metric": "Token F1", "configuration": "Base", "value": pytest.approx(0.2)} in quality
    assert not [x for x in quality if x["configuration"] == "Base" and x["metric"] == "Page hit@k"]
    assert {x["metric"] for x in chart_rows(rows, "seconds")} == {"Total latency (s)", "Total latency p95 (s)"}

    rec = AnswerRecord(0, 1, ttft_s=0.25, total_s=1.5, input_tokens=120, output_tokens=30,
                       metrics={"page_rank": 2, "doc_rank": 1, "f1": 0.5, "style": False,
                                "judge_groundedness": 4, "judge_relevance": 5})
    assert answer_facts(rec) == ["first token 0.25 s", "total 1.50 s", "120+30 tokens",
                                 "expected page at rank 2, document at 1", "F1 0.50", "format not followed",
                                 "LLM judgement: grounded 4/5, relevant 5/5"]
    assert answer_facts(AnswerRecord(0, 1))[3:] == []
    assert expected_answers(info, 2) == 4
    limited = store.get_run(store.create_run(info.set_id, info.configs, RunOptions(limit=1)))
    assert expected_answers(limited, 2) == 2 and expected_answers(limited, 0) == 0


def test_configuration_form():
    defaults = [RunConfig("Base", "m"), RunConfig("Base + RAG", "m", rag=True)]
    slots = cf.slot_defaults(defaults, ["m", "other"])
    assert len(slots) == cf.MAX_CONFIGS and [on for on, _ in slots] == [True, True, False, False]
    assert slots[2][1] == RunConfig("Config 3", "m")
    assert cf.config_from_form(0, True, "  ", "m", True, 5.0, False) == RunConfig("Config 1", "m", True, 5, False)
    assert cf.config_from_form(1, False, "X", "m", True, 4, True) is None
    assert cf.config_from_form(1, True, "X", "", True, 4, True) is None
    assert [cf.default_limit(n) for n in (0, 3, 10, 48)] == [0, 3, 10, 10]
    bad = wf.form_problems([defaults[0]], "[bad")
    assert len(bad) == 1 and "not a valid regular expression" in bad[0]
    assert wf.form_problems([], "") == ["Choose at least one configuration."]


def test_estimate_uses_answers_measured_here_else_the_backend_default(store):
    configs = [RunConfig("Base", "m"), RunConfig("Base + RAG", "m", rag=True), RunConfig("GPT", "gpt")]
    backends = {"m": "local", "gpt": "openai"}
    guess = estimate_run(configs, 10, {}, backends)
    assert not guess.measured and guess.answers == 30
    assert guess.seconds == pytest.approx(10 * (2 * DEFAULT_ANSWER_S["local"] + DEFAULT_ANSWER_S["openai"]))
    assert guess.text() == f"about {-(-int(guess.seconds) // 60)} min"

    run_with(store, 3, total_s=(2.0, 4.0))
    info, _ = run_with(store, 1, total_s=(30.0, 4.0))  # one slow answer (a first load) does not move the median
    store.save_result(info.id, AnswerRecord(0, store.questions(info.set_id)[0].id, error="boom", total_s=99.0))
    measured = measured_answer_seconds(store)
    assert measured == {("m", False): 2.0, ("m", True): 4.0}
    mine = estimate_run(configs[:2], 10, measured, backends)
    assert mine.measured and mine.seconds == 60.0 and mine.text() == "about 1 min"
    assert estimate_run([RunConfig("RAG only", "m", rag=True)], 1, {("m", False): 2.0}, backends).seconds == 2.0
    assert estimate_run(configs[:1], 1, measured, backends, judge=True).seconds == 2.0 + DEFAULT_ANSWER_S["openai"]
    assert Estimate(20.0, 4, True).text() == "under a minute" and Estimate(0.0, 0, False).text() == ""
    assert "about 1 min (20 answers; time per answer measured on this machine)" in wf.estimate_caption(mine)
    assert "first guess" in wf.estimate_caption(guess) and wf.estimate_caption(Estimate(0, 0, False)) == ""


LOAD_S = 1.5


class SlowToLoad(FakeListChatModel):
    """A chat model that spends LOAD_S on its first call, as a local model does loading its weights."""

    loaded: bool = False

    def _load(self) -> None:
        if not self.loaded:
            time.sleep(LOAD_S)
            self.loaded = True

    def _call(self, *args: Any, **kwargs: Any) -> str:
        self._load()
        return super()._call(*args, **kwargs)

    def _stream(self, *args: Any, **kwargs: Any) -> Any:
        self._load()
        yield from super()._stream(*args, **kwargs)


@pytest.mark.parametrize("backend", ["local", "openai"])
def test_first_answer_time_excludes_model_loading(store, backend):
    set_id = store.create_set("S", [EvalQuestion(f"Q{i}?", "Paris") for i in range(4)])
    run_id = store.create_run(set_id, [RunConfig("Base", "slow")], RunOptions(style_pattern=""))
    model = SlowToLoad(responses=["Paris is the capital."])
    messages = []
    info = Evaluator(store, None, lambda cfg, n: model, backends={"slow": backend}).run(
        run_id, progress=lambda p: messages.append(p.message))
    assert info.status == "done" and info.answered == 4
    first, *rest = [r.total_s for r in store.results(run_id)]
    if backend == "local":  # warmed before its first timed answer: the first is like the others
        assert first < 0.5 + max(rest) < LOAD_S, (first, rest)
        assert "Base: loading the model" in messages
    else:  # a remote model is never called just to warm it (it has nothing to load, and calls cost money)
        assert first >= LOAD_S > max(rest), (first, rest)


def test_page_decisions_on_sets_and_runs(store, settings):
    set_id, messages = wf.import_file(store, b'{"question": "Q?"}\n{oops\n', "mine.jsonl")
    assert set_id and messages[0][0] == "warning" and "mine.jsonl line 2" in messages[0][1]
    assert messages[-1] == ("success", "Imported 1 questions from mine.jsonl (1 row(s) left out, listed above).")
    assert wf.import_file(store, b"\xff", "bad.csv")[0] is None
    none_id, none_messages = wf.import_file(store, b"{oops\n", "none.jsonl")
    assert none_id is None and {kind for kind, _ in none_messages} == {"warning"}
    assert "none.jsonl line 1: not valid JSON" in none_messages[0][1]
    assert wf.set_from_examples(store, settings.db_path, "generated") is None  # no examples yet
    qs = store.questions(set_id)
    run_id = store.create_run(set_id, [RunConfig("Base", "m")], RunOptions())
    assert wf.mark_stopped(store, run_id) == "Stopped after 0 answers. Continue the run below whenever you like."
    assert store.get_run(run_id).status == "stopped" and wf.mark_stopped(store, run_id) is None
    rec = AnswerRecord(0, qs[0].id, "A")
    assert wf.answered_questions(qs, [rec]) == qs and wf.answered_questions(qs, []) == []
    assert wf.answer_of([rec], qs[0].id, 0) is rec and wf.answer_of([rec], qs[0].id, 1) is None
    assert wf.expected_where(EvalQuestion("Q", document="h.pdf", pages=[4, 5])) == "h.pdf p. 4, 5"
    assert wf.expected_where(EvalQuestion("Q")) == ""
    assert wf.citation_line({"marker": 2, "document": "h.pdf", "pages": [4]}) == "[2] h.pdf p. 4"
    assert wf.citation_line({"marker": 1, "document": "faq.md", "pages": []}) == "[1] faq.md"
    assert wf.question_rows(qs)[0]["pages"] == ""
    picker = [ModelChoice("Grounded", "m", "/a", "grounding"), ModelChoice("m", "m")]
    four = cf.default_configs(picker)
    assert wf.chat_default_line(four, picker) == ("Chat answers with Grounded and RAG by default: that is "
                                                  "configuration Grounded + RAG.")
    assert wf.chat_default_line(four[:2], picker).endswith("not among these configurations.")


def test_hybrid_sentence_says_its_basis():
    from rag_ft.evaluation import RunInfo

    configs = [RunConfig("Vector", "m", rag=True, k=3, hybrid=False), RunConfig("Hybrid", "m", rag=True, k=3)]
    info = RunInfo(1, 1, "r", configs, RunOptions(style_pattern=""), "done", "", "", "")

    def rows(n: int) -> list[dict]:
        return [{"configuration": c.label, "answers": n, "errors": 0, "page_hit": hit, "n": {"page": n}}
                for c, hit in zip(configs, (0.5, 0.75), strict=True)]

    assert "Hybrid search changed page hit@3 from 50% to 75% (12 questions)." in plain_summary(info, rows(12))
    assert ("Hybrid search changed page hit@3 from 50% to 75%, on only 4 questions: too few to conclude."
            in plain_summary(info, rows(4)))
