"""Evaluation sets, runs, scoring, summary and the LLM judge (fast tests: no local chat model)."""

import json

import pytest
from fake_openai import GOOD_KEY

from rag_ft.chat.prompt import NOT_COVERED
from rag_ft.evaluation import (
    SAMPLE_QUESTIONS,
    SAMPLE_SET_NAME,
    AnswerRecord,
    EvalError,
    EvalQuestion,
    EvalStore,
    Evaluator,
    RunConfig,
    RunOptions,
    aggregate,
    default_configs,
    export_csv,
    export_jsonl,
    import_sample_set,
    judge_answer,
    parse_judgement,
    parse_pages,
    parse_questions,
    plain_summary,
    question_of,
    questions_from_examples,
    results_rows,
    rows_to_csv,
    score_answer,
    summary_table,
)
from rag_ft.evaluation.configs import chat_default
from rag_ft.evaluation.metrics import compile_style
from rag_ft.models.catalogue import ModelChoice
from rag_ft.models.providers import get_chat_model
from rag_ft.settings import Settings


@pytest.fixture
def store(settings):
    s = EvalStore(settings.db_path)
    yield s
    s.close()


def test_parse_jsonl_reports_bad_lines_and_keeps_good_ones():
    text = "\n".join([
        json.dumps({"question": "How many days of leave?", "answer": "25 days", "document": "handbook.pdf",
                    "pages": [3, 4], "answerable": True}),
        "{not json",
        json.dumps({"answer": "no question here"}),
        json.dumps({"question": "Who won in 1850?", "answerable": "no"}),
        json.dumps({"question": "Pages?", "pages": "x-y"}),
    ])
    result = parse_questions(text.encode(), "mine.jsonl")
    assert [q.question for q in result.questions] == ["How many days of leave?", "Who won in 1850?"]
    assert result.questions[0].pages == [3, 4] and result.questions[0].reference == "25 days"
    assert result.questions[1].answerable is False and result.questions[0].origin == "mine.jsonl:1"
    assert result.problems[0].startswith("mine.jsonl line 2: not valid JSON")
    assert "mine.jsonl line 3: no 'question'" in result.problems[1]
    assert "mine.jsonl line 5: pages must be numbers" in result.problems[2]


def test_parse_csv_and_round_trip_exports():
    csv_text = "Question,Answer,Document,Pages,Answerable\nWhat is LoRA?,Low-rank adaptation,guide.pdf,3-5,yes\n,,,,\n"
    result = parse_questions(csv_text.encode("utf-8-sig"), "set.csv")
    assert len(result.questions) == 1 and result.questions[0].pages == [3, 4, 5]
    assert result.problems == ["set.csv line 3: no 'question' (a non-empty text) in this row."]
    again = parse_questions(export_csv(result.questions), "again.csv").questions
    assert [(q.question, q.reference, q.pages, q.answerable) for q in again] == [
        ("What is LoRA?", "Low-rank adaptation", [3, 4, 5], True)]
    lines = export_jsonl(result.questions).splitlines()
    assert json.loads(lines[0]) == {"question": "What is LoRA?", "answer": "Low-rank adaptation",
                                    "document": "guide.pdf", "pages": [3, 4, 5], "section": "", "answerable": True}
    with pytest.raises(EvalError, match="header with a 'question' column"):
        parse_questions(b"a,b\n1,2\n", "bad.csv")
    with pytest.raises(EvalError, match="not UTF-8"):
        parse_questions("question\nx".encode("utf-16"), "u16.csv")
    with pytest.raises(EvalError, match="use a .jsonl, .json or .csv"):
        parse_questions(b"x", "set.xlsx")


def test_parse_pages_forms():
    assert parse_pages("p. 3") == [3] and parse_pages("3, 5-6") == [3, 5, 6] and parse_pages([2, "4"]) == [2, 4]
    assert parse_pages(7) == [7] and parse_pages(None) == []
    with pytest.raises(ValueError):
        parse_pages("9-2")


def test_sets_in_sqlite_survive_reopening(settings, store):
    qs = [EvalQuestion("Q1?", "A1", "d.pdf", [1]), EvalQuestion("Q2?", answerable=False)]
    set_id = store.create_set("Mine", qs, source="test")
    assert store.create_set("Mine", qs[:1]) != set_id  # a second set with the same name gets "(2)"
    reopened = EvalStore(settings.db_path)
    assert [s.name for s in reopened.list_sets()] == ["Mine", "Mine (2)"]
    got = reopened.questions(set_id)
    assert [(q.question, q.pages, q.answerable) for q in got] == [("Q1?", [1], True), ("Q2?", [], False)]
    with pytest.raises(EvalError):
        store.create_set("Empty", [])
    store.delete_set(set_id)
    assert [s.name for s in reopened.list_sets()] == ["Mine (2)"]


def test_sample_set_imports_once(store):
    if not SAMPLE_QUESTIONS.exists():
        pytest.skip("sample_docs/questions.jsonl is not there yet")
    first = import_sample_set(store)
    assert import_sample_set(store) == first
    s = store.find_set(SAMPLE_SET_NAME)
    assert s.size >= 3 and any(not q.answerable for q in store.questions(first))


def test_sets_derived_from_training_examples(settings):
    from rag_ft.db import connect
    from rag_ft.training.examples import ExampleStore

    conn = connect(settings.db_path)  # the documents' chunk table (created by the migrations), as indexing writes it
    conn.execute("INSERT INTO chunks VALUES ('c1', 'd1', 'default', 'handbook.pdf', 0, 'abc123', 'text', '[4, 5]',"
                 " 'Leave', '[]')")
    ex = ExampleStore(settings.db_path)
    user = "Passages:\n<<<\n[1] (handbook.pdf, p. 4)\nLeave is 25 days.\n>>>\n\nQuestion: How much leave do I get?"
    ex.add([{"role": "user", "content": user}, {"role": "assistant", "content": "25 days [1]."}],
           status="approved", source="generated", document="handbook.pdf", document_id="d1", chunk_hash="abc123")
    ex.add([{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}],
           status="approved", split="validation")
    ex.add([{"role": "user", "content": "Draft?"}, {"role": "assistant", "content": "Yes."}], status="draft",
           split="validation")
    generated = questions_from_examples(settings.db_path, "generated")
    assert [(q.question, q.reference, q.document, q.pages) for q in generated] == [
        ("How much leave do I get?", "25 days [1].", "handbook.pdf", [4, 5])]
    held = questions_from_examples(settings.db_path, "held_out")
    assert [q.question for q in held] == ["Hi?"]
    assert question_of("plain question") == "plain question"


def test_default_configs_and_validation(store):
    # available_models order: Chat's default first (the grounding adapter with the local provider)
    grounded, base = ModelChoice("Grounded", "SmolLM2", "/a", "grounding"), ModelChoice("SmolLM2", "SmolLM2")
    tuned = ModelChoice("mine (LoRA)", "SmolLM2", "/b", "tuned")
    # base model as Chat's default (OpenAI provider, or no adapter): base and tuned, with and without RAG
    configs = default_configs([base, grounded, tuned], k=3)
    assert [(c.label, c.model, c.rag) for c in configs] == [
        ("Base", "SmolLM2", False), ("Base + RAG", "SmolLM2", True),
        ("Tuned", "mine (LoRA)", False), ("Tuned + RAG", "mine (LoRA)", True)]
    assert len(default_configs([base])) == 2 and default_configs([base, grounded])[3].model == "Grounded"
    # the adapter is Chat's default, no tuned model: the four hold it with RAG, as Chat answers
    plain = default_configs([grounded, base])
    assert [(c.label, c.model, c.rag) for c in plain] == [
        ("Base", "SmolLM2", False), ("Base + RAG", "SmolLM2", True),
        ("Grounded", "Grounded", False), ("Grounded + RAG", "Grounded", True)]
    assert chat_default(plain, [grounded, base]) == plain[3]
    # adapter and a tuned model: Chat's default joins, Base alone gives way (at most four)
    both = default_configs([grounded, base, tuned], k=3)
    assert [(c.label, c.model, c.rag) for c in both] == [
        ("Base + RAG", "SmolLM2", True), ("Tuned", "mine (LoRA)", False), ("Tuned + RAG", "mine (LoRA)", True),
        ("Chat default", "Grounded", True)]
    assert chat_default(both, [grounded, base, tuned]).label == "Chat default"
    assert chat_default(both[:3], [grounded, base, tuned]) is None
    set_id = store.create_set("S", [EvalQuestion("Q?")])
    with pytest.raises(EvalError, match="At most 4"):
        store.create_run(set_id, configs + [RunConfig("Fifth", "SmolLM2")], RunOptions())
    with pytest.raises(EvalError, match="own name"):
        store.create_run(set_id, [configs[0], configs[0]], RunOptions())
    with pytest.raises(ValueError, match="not a valid regular expression"):
        store.create_run(set_id, configs, RunOptions(style_pattern="[oops"))


def rec_with(**kw):
    base = dict(config_index=0, question_id=1, answer="", covered=True, citations=[], passages=[], total_s=1.0)
    base.update(kw)
    return AnswerRecord(**base)


def test_score_answer_by_hand():
    q = EvalQuestion("How much leave?", "25 days of leave", "handbook.pdf", [4], answerable=True, id=1)
    passages = [{"document": "faq.md", "pages": []}, {"document": "handbook.pdf", "pages": [5]},
                {"document": "handbook.pdf", "pages": [4]}]
    citations = [{"marker": 3, "document": "handbook.pdf", "pages": [4], "support": [0.6], "attached": False},
                 {"marker": 1, "document": "faq.md", "pages": [], "support": [0.1], "attached": False}]
    rec = rec_with(answer="25 days [3]. See FAQ [1]. [Source: handbook.pdf]", citations=citations, passages=passages)
    cfg = RunConfig("Base + RAG", "m", rag=True, k=2)
    mx = score_answer(q, cfg, rec, compile_style(r"\[Source: .+\]\s*$"), similarity=0.8, removed_markers=0)
    assert (mx["doc_rank"], mx["page_rank"], mx["page_rank_near"]) == (2, 3, 2)
    assert mx["citation_precision"] == 0.5 and mx["citation_recall"] == 1.0
    # markers and the [Source: ...] tag are left out: "25 days see faq" vs "25 days of leave" -> P = R = 2/4
    assert mx["f1"] == 0.5
    assert mx["style"] is True and mx["not_covered"] is None and mx["wrong_refusal"] is False
    agg = aggregate([AnswerRecord(0, 1, metrics=mx, total_s=2.0, ttft_s=0.5)], cfg)
    assert agg["doc_hit"] == 1.0 and agg["page_hit"] == 0.0 and agg["page_hit_near"] == 1.0
    assert agg["page_mrr"] == pytest.approx(1 / 3) and agg["total_s"] == 2.0

    unanswerable = EvalQuestion("Who won in 1850?", answerable=False, id=2)
    refused = rec_with(answer=NOT_COVERED, covered=False)
    mx2 = score_answer(unanswerable, cfg, refused, compile_style("x"), None)
    assert mx2["not_covered"] is True and mx2["style"] is None and mx2["doc_rank"] is None
    plain = score_answer(unanswerable, RunConfig("Base", "m"), rec_with(answer="Napoleon."), None, None)
    assert plain["not_covered"] is False and "doc_rank" not in plain and plain["style"] is None


def test_run_store_summary_and_csv(store):
    set_id = store.create_set("S", [EvalQuestion("Q1?", "A", "d.pdf", [1]), EvalQuestion("Q2?", answerable=False)])
    configs = [RunConfig("Base", "m"), RunConfig("Base + RAG", "m", rag=True, k=3)]
    run_id = store.create_run(set_id, configs, RunOptions(style_pattern=r"\[1\]"))
    qs = store.questions(set_id)
    store.save_result(run_id, AnswerRecord(0, qs[0].id, "B", metrics={"f1": 0.2, "style": False}, total_s=1.0))
    store.save_result(run_id, AnswerRecord(1, qs[0].id, "A [1]", metrics={
        "f1": 0.6, "style": True, "doc_rank": 1, "page_rank": 2, "page_rank_near": 1,
        "retrieval_applies": True, "page_applies": True}, total_s=3.0))
    store.save_result(run_id, AnswerRecord(1, qs[1].id, NOT_COVERED, covered=False,
                                           metrics={"not_covered": True}, total_s=0.1))
    info = store.get_run(run_id)
    assert info.answered == 3 and info.configs[1].k == 3 and info.options.style_pattern == r"\[1\]"
    rows = summary_table(info, store.results(run_id))
    assert rows[1]["page_hit"] == 1.0 and rows[1]["page_mrr"] == 0.5 and rows[1]["f1"] == 0.6
    text = " ".join(plain_summary(info, rows))
    # one or two questions per configuration: the counts, and no verdict
    assert "Only 1 question answered per configuration: too few to conclude" in text
    assert "token F1 was 0.20 without RAG and 0.60 with it, on only 1 question: too few to conclude" in text
    assert "RAG raised" not in text
    assert "expected page in the top 3 for 1 of 1 questions with known pages; only 1 question" in text
    assert "Base 0 of 1, Base + RAG 1 of 1; only 1 question: too few to conclude" in text
    assert "no per-token cost" in text
    flat = results_rows(info, qs, store.results(run_id))
    csv_text = rows_to_csv(flat)
    assert csv_text.splitlines()[0].startswith("question,answerable") and len(csv_text.splitlines()) == 4
    assert [r.id for r in store.list_runs(set_id)] == [run_id]


def test_runner_stops_between_answers_and_continues(store, settings, fake_openai):
    # a real chat model (OpenAI client against the fake server); no retrieval needed for this test
    set_id = store.create_set("S", [EvalQuestion("Q1?", "Paris"), EvalQuestion("Q2?", "Paris")])
    run_id = store.create_run(set_id, [RunConfig("Base", "gpt-4.1-mini")], RunOptions(style_pattern=""))
    s = Settings(openai_api_key=GOOD_KEY, openai_base_url=fake_openai.base_url)
    asked = []

    def stop_after_one() -> bool:
        asked.append(1)
        return len(asked) > 1

    ev = Evaluator(store, None, lambda cfg, n: get_chat_model(s, cfg.model, max_tokens=n),
                   backends={"gpt-4.1-mini": "openai"})
    seen = []
    info = ev.run(run_id, progress=lambda p: seen.append(p.done), should_stop=stop_after_one)
    assert info.status == "stopped" and info.answered == 1
    info = ev.run(run_id)  # continuing asks only the question not answered yet
    assert info.status == "done" and info.answered == 2
    chat_requests = [r for r in fake_openai.requests if r.path.endswith("/chat/completions")]
    assert len(chat_requests) == 2 and chat_requests[0].json.get("max_completion_tokens", chat_requests[0].json.get("max_tokens")) == 128
    rec = store.results(run_id)[0]
    assert rec.answer.startswith("Paris") and rec.output_tokens > 0 and rec.metrics["f1"] > 0


def test_llm_judge_against_the_fake_server(fake_openai):
    judge = get_chat_model(Settings(openai_api_key=GOOD_KEY, openai_base_url=fake_openai.base_url))
    fake_openai.reply_text = 'Sure: {"groundedness": 4, "relevance": 5}'
    got = judge_answer(judge, "Capital of France?", "Paris [1].", [{"text": "Paris is the capital of France."}])
    assert got == {"judge_groundedness": 4, "judge_relevance": 5}
    prompt = fake_openai.requests[-1].json["messages"][0]["content"]
    assert "Paris is the capital of France." in prompt and "Capital of France?" in prompt
    fake_openai.reply_text = "I think it is good."
    assert "not the JSON" in judge_answer(judge, "q", "a", [])["judge_error"]
    bad = get_chat_model(Settings(openai_api_key="sk-wrong-key", openai_base_url=fake_openai.base_url))
    assert "refused the API key" in judge_answer(bad, "q", "a", [])["judge_error"]
    assert parse_judgement('{"groundedness": 9, "relevance": 1}') is None


@pytest.mark.slow
def test_full_run_over_the_sample_documents_produces_every_metric(settings, local_chat, local_embeddings):
    """3 answerable questions with known pages + 1 unanswerable, four configurations, real local models."""
    from rag_ft.evaluation import aggregate
    from rag_ft.index.documents import load_sample_documents
    from rag_ft.models.catalogue import available_models, chat_model_for
    from rag_ft.retrieval.hybrid import Retriever

    if not SAMPLE_QUESTIONS.exists():
        pytest.skip("sample_docs/questions.jsonl is not there yet")
    outcomes = load_sample_documents(settings, local_embeddings)
    assert outcomes and all(o.status != "failed" for o in outcomes), [o.message for o in outcomes]
    store = EvalStore(settings.db_path)
    sample = store.questions(import_sample_set(store))
    paged = [q for q in sample if q.answerable and q.document and q.pages][:3]
    unanswerable = [q for q in sample if not q.answerable][:1]
    assert len(paged) == 3 and len(unanswerable) == 1
    set_id = store.create_set("Small", [*paged, *unanswerable])

    choices = available_models(settings)
    configs = default_configs(choices, k=3)
    if len(configs) == 2:  # no tuned model in this checkout: compare hybrid against vector-only instead
        configs.append(RunConfig("Base + RAG (vector only)", configs[0].model, True, 3, hybrid=False))
    run_id = store.create_run(set_id, configs, RunOptions(max_tokens=24))
    by_label = {c.label: c for c in choices}
    seen = []
    ev = Evaluator(store, local_embeddings, lambda cfg, n: chat_model_for(settings, by_label[cfg.model], n),
                   retriever=Retriever(settings, local_embeddings))
    info = ev.run(run_id, progress=lambda p: seen.append((p.done, p.total)))
    assert info.status == "done" and info.answered == 4 * len(configs)
    assert seen[0] == (0, 4 * len(configs)) and seen[-1] == (4 * len(configs), 4 * len(configs))
    records = store.results(run_id)
    assert not [r.error for r in records if r.error]

    for i, cfg in enumerate(configs):
        agg = aggregate([r for r in records if r.config_index == i], cfg)
        for key in ("similarity", "f1", "style", "not_covered", "ttft_s", "total_s", "input_tokens",
                    "output_tokens"):
            assert agg[key] is not None, (cfg.label, key)
        assert agg["cost"] == 0.0 and agg["output_tokens"] > 0 and agg["total_s"] >= agg["ttft_s"] > 0
        assert 0.0 <= agg["f1"] <= 1.0 and -1.0 <= agg["similarity"] <= 1.0
        if cfg.rag:
            for key in ("doc_hit", "doc_mrr", "page_hit", "page_mrr", "page_hit_near", "page_mrr_near",
                        "citation_recall"):
                assert agg[key] is not None, (cfg.label, key)
            assert agg["page_hit_near"] >= agg["page_hit"] and agg["doc_hit"] >= agg["page_hit"]
            written = [c for r in records if r.config_index == i for c in r.citations if not c["attached"]]
            assert (agg["citation_precision"] is not None) == bool(written)  # defined iff the model cited
        else:
            assert "doc_hit" not in agg
    rows = summary_table(info, records)
    text = " ".join(plain_summary(info, rows))
    assert "retrieval put an expected page in the top 3" in text and "no per-token cost" in text
    print("\n".join(f"{r['configuration']}: " + ", ".join(
        f"{k}={v:.3f}" for k, v in r.items() if isinstance(v, float)) for r in rows))
    print(text)
