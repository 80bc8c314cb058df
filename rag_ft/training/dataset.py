"""A fine-tuning dataset as OpenAI sees it: validation, token counts, cost / epochs / time, JSONL and CSV.

The rules follow OpenAI's cookbook notebook "Data preparation and analysis for chat model fine-tuning":
format errors (the API would reject the file), warnings (it would train, but probably not as meant),
the default number of epochs the API picks, and billing tokens capped at the model's example limit.
A record is ``{"messages": [{"role": ..., "content": ...}, ...]}`` (one JSONL line).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rag_ft import pricing
from rag_ft.pricing import PRICES_AS_OF as PRICES_AS_OF  # re-exported: the training page shows it
from rag_ft.settings import LOCAL_CHAT_MODEL
from rag_ft.training import tokens

ROLES = ("system", "user", "assistant", "tool", "function")  # every role the fine-tuning API accepts
CHAT_ROLES = ROLES[:3]  # a plain chat example: the only roles the job snapshot (rag_ft.training.jobs) takes
MESSAGE_KEYS = ("role", "content", "name", "weight", "tool_calls", "tool_call_id", "function_call", "refusal")
MIN_EXAMPLES = 10  # the fine-tuning API refuses fewer
# One message over this many characters is refused (at import, with its line, and in the checks): the largest
# context a fine-tuning API takes is ~65k tokens (~260k characters). Counting the tokens of a 49 MB message
# took 64 s and 7.9 GB; a JSONL line over MAX_LINE_BYTES is refused before it is even parsed.
MAX_MESSAGE_CHARS = 262_144
MAX_LINE_BYTES = 4 * MAX_MESSAGE_CHARS

# training prices and per-example token limits: rag_ft.pricing (one table with the answering prices)
LOCAL_MAX_TOKENS = 2048  # SmolLM2-135M context used by the local trainer

# OpenAI's default-epochs heuristic (cookbook constants)
TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25

# Local LoRA training on CPU, measured (shared/local-models.md §4): 2.14 s per step at batch 4 of
# examples averaging 153 tokens, on 2 cores. We scale by tokens per step.
LOCAL_SECONDS_PER_STEP = 2.14
LOCAL_BATCH = 4
LOCAL_MEASURED_TOKENS = 153


def models() -> list[str]:
    """Models the estimate can be made for: OpenAI's fine-tunable ones, then the local one."""
    return [*pricing.fine_tunable_models(), LOCAL_CHAT_MODEL]


def max_tokens_for(model: str) -> int:
    """The most tokens one training example may have (longer ones are truncated, and billed truncated)."""
    if tokens.is_local_model(model):
        return LOCAL_MAX_TOKENS
    return pricing.max_training_tokens(model)


# ---- validation ---------------------------------------------------------------------------------
@dataclass
class Issue:
    index: int  # position of the example in the records given (-1: the whole dataset)
    level: str  # "error" (the API would reject it) or "warning"
    code: str
    message: str


@dataclass
class Report:
    n: int
    issues: list[Issue] = field(default_factory=list)
    token_counts: list[int | None] = field(default_factory=list)  # per example; None if malformed

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.level == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.level == "warning"]

    @property
    def ok(self) -> bool:
        """True when the API would accept the file (warnings allowed)."""
        return not self.errors

    def for_example(self, index: int) -> list[Issue]:
        return [i for i in self.issues if i.index == index]

    def problem_text(self, index: int) -> str:
        """The grid's validity cell: '' when fine, else the problems in words."""
        return "; ".join(i.message for i in self.for_example(index))

    def dataset_issues(self) -> list[Issue]:
        return [i for i in self.issues if i.index == -1]


def has_role(message: Any, roles: Sequence[str] = ROLES) -> bool:
    """The message is an object whose "role" is one of ``roles``."""
    return isinstance(message, dict) and message.get("role") in roles


def has_assistant(messages: Sequence[Any]) -> bool:
    """At least one assistant message: an example without one has nothing to learn from."""
    return any(has_role(m, ("assistant",)) for m in messages)


def format_errors(record: Any) -> list[tuple[str, str]]:
    """(code, message) for each reason the fine-tuning API would reject this record."""
    if not isinstance(record, dict):
        return [("data_type", "not a JSON object")]
    messages = record.get("messages")
    if not messages or not isinstance(messages, list):
        return [("missing_messages_list", "no 'messages' list")]
    out: list[tuple[str, str]] = []
    for n, m in enumerate(messages, 1):
        if not isinstance(m, dict):
            out.append(("message_type", f"message {n} is not an object"))
            continue
        if "role" not in m or ("content" not in m and "tool_calls" not in m and "function_call" not in m):
            missing = "role" if "role" not in m else "content"
            out.append(("message_missing_key", f"message {n} has no {missing}"))
        extra = [k for k in m if k not in MESSAGE_KEYS]
        if extra:
            out.append(("message_unrecognized_key", f"message {n} has unknown key(s): {', '.join(map(str, extra))}"))
        role = m.get("role")
        if "role" in m and not has_role(m):
            out.append(("unrecognized_role", f"message {n} has unknown role {role!r}"))
        content = m.get("content")
        if "content" in m and content is not None and not isinstance(content, str):
            out.append(("content_type", f"message {n} content is not text"))
        elif "role" in m and not m.get("tool_calls") and not m.get("function_call") and (
                content is None or not str(content).strip()):
            out.append(("missing_content", f"message {n} ({role}) is empty"))
        if isinstance(content, str) and len(content) > MAX_MESSAGE_CHARS:
            out.append(("message_too_long", f"message {n} has {len(content):,} characters: the limit is "
                        f"{MAX_MESSAGE_CHARS:,}"))
        if "weight" in m and m["weight"] not in (0, 1):
            out.append(("weight", f"message {n} weight must be 0 or 1"))
    if not has_assistant(messages):
        out.append(("example_missing_assistant_message", "no assistant message"))
    return out


def record_key(record: dict[str, Any]) -> str:
    """What makes two records duplicates: the same messages (key order ignored). The store's import uses it too."""
    return json.dumps(record.get("messages"), sort_keys=True, ensure_ascii=False)


_COUNTS: dict[tuple[str, str], int] = {}  # (model, content hash) -> tokens: the grid reruns on every click
_COUNTS_MAX = 100_000


def count_tokens(messages: list[dict[str, Any]], model: str) -> int:
    """Tokens in one example for ``model``: tiktoken (OpenAI) or the local model's chat template.

    Cached by content hash, so unchanged rows are never counted twice in a process. Messages over the size
    limit are not tokenized (that is what took minutes and gigabytes): they count as characters / 4, and
    ``format_errors`` already refuses them.
    """
    key = (model, hashlib.sha256(json.dumps(messages, sort_keys=True, ensure_ascii=False).encode()).hexdigest())
    if key in _COUNTS:
        return _COUNTS[key]
    if any(isinstance(m, dict) and len(str(m.get("content") or "")) > MAX_MESSAGE_CHARS for m in messages):
        n = sum(len(str(m.get("content") or "")) for m in messages if isinstance(m, dict)) // 4
    elif tokens.is_local_model(model):
        n = tokens.count_local(messages)
    else:
        n = tokens.count_openai(messages, model)
    if len(_COUNTS) >= _COUNTS_MAX:
        _COUNTS.clear()
    _COUNTS[key] = n
    return n


def validate(records: Sequence[Any], model: str = LOCAL_CHAT_MODEL, min_examples: int = MIN_EXAMPLES,
             count: bool = True) -> Report:
    """Check every record; per-example issues in words, plus dataset-level ones (index -1)."""
    report = Report(n=len(records))
    seen: dict[str, int] = {}
    limit = max_tokens_for(model)
    for i, rec in enumerate(records):
        errs = format_errors(rec)
        for code, msg in errs:
            report.issues.append(Issue(i, "error", code, msg))
        if errs:
            report.token_counts.append(None)
            continue
        roles = [m.get("role") for m in rec["messages"]]
        if "system" not in roles:
            report.issues.append(Issue(i, "warning", "missing_system", "no system message"))
        if "user" not in roles:
            report.issues.append(Issue(i, "warning", "missing_user", "no user message"))
        key = record_key(rec)
        if key in seen:
            report.issues.append(Issue(i, "warning", "duplicate", f"duplicate of example {seen[key] + 1}"))
        else:
            seen[key] = i
        n_tok = count_tokens(rec["messages"], model) if count else None
        report.token_counts.append(n_tok)
        if n_tok is not None and n_tok > limit:
            report.issues.append(Issue(i, "warning", "too_long",
                                       f"{n_tok} tokens: over {model}'s {limit}-token limit, will be truncated"))
    valid = sum(1 for i in range(len(records)) if not any(x.level == "error" for x in report.for_example(i)))
    if valid < min_examples:
        report.issues.append(Issue(-1, "error", "too_few",
                                   f"{valid} valid example(s): fine-tuning needs at least {min_examples}"))
    return report


# ---- cost, epochs, time -------------------------------------------------------------------------
def default_epochs(n_examples: int) -> int:
    """The number of epochs OpenAI picks when none is given: 3, scaled so examples x epochs is in [100, 25000]."""
    n = TARGET_EPOCHS
    if n_examples <= 0:
        return n
    if n_examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        n = min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // n_examples)
    elif n_examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        n = max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n_examples)
    return n


@dataclass
class Estimate:
    tokens: int  # billing tokens in one pass over the dataset (each example capped at the model's limit)
    epochs: int
    cost_usd: float | None  # None for the local model (free) or a model missing from rag_ft.pricing
    local_seconds: float | None  # None for OpenAI models
    examples: int = 0
    token_counts: list[int] = field(default_factory=list)

    @property
    def training_tokens(self) -> int:
        return self.tokens * self.epochs


def estimate(records: Sequence[dict[str, Any]], model: str, epochs: int | None = None) -> Estimate:
    """Training tokens, epochs (OpenAI's default when None), cost and local CPU time for valid records."""
    good = [r for r in records if not format_errors(r)]
    counts = [count_tokens(r["messages"], model) for r in good]
    limit = max_tokens_for(model)
    billing = sum(min(limit, c) for c in counts)
    n_epochs = int(epochs) if epochs else default_epochs(len(good))
    price = None if tokens.is_local_model(model) else pricing.training_price(model)
    cost = billing * n_epochs * price / 1_000_000 if price is not None else None
    local = None
    if tokens.is_local_model(model) and good:
        steps = math.ceil(len(good) / LOCAL_BATCH) * n_epochs
        mean = sum(min(limit, c) for c in counts) / len(counts)
        local = steps * LOCAL_SECONDS_PER_STEP * mean / LOCAL_MEASURED_TOKENS
    return Estimate(billing, n_epochs, cost, local, len(good), counts)


def histogram(counts: Sequence[int], bins: int = 10) -> list[tuple[str, int]]:
    """(label, number of examples) per token-length bin, for a bar chart."""
    if not counts:
        return []
    lo, hi = min(counts), max(counts)
    width = max(1, math.ceil((hi - lo + 1) / bins))
    out = []
    for b in range(bins):
        a = lo + b * width
        if a > hi:
            break
        n = sum(1 for c in counts if a <= c < a + width)
        out.append((f"{a}-{a + width - 1}", n))
    return out


# ---- import / export ----------------------------------------------------------------------------
@dataclass
class ImportResult:
    records: list[dict[str, Any]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # source line number of each record
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)


def to_jsonl(records: Sequence[dict[str, Any]]) -> bytes:
    """One JSON object per line, UTF-8, no ASCII escaping; what the fine-tuning API uploads."""
    return "".join(json.dumps({"messages": r["messages"]}, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


def _from_prompt_completion(obj: dict[str, Any]) -> dict[str, Any] | None:
    """Legacy {prompt, completion} (or question/answer) lines become chat records."""
    lower = {str(k).lower(): v for k, v in obj.items()}
    for q, a in (("prompt", "completion"), ("question", "answer"), ("user", "assistant")):
        if q in lower and a in lower:
            msgs = []
            if isinstance(lower.get("system"), str) and lower["system"].strip():
                msgs.append({"role": "system", "content": lower["system"]})
            msgs += [{"role": "user", "content": lower[q]}, {"role": "assistant", "content": lower[a]}]
            return {"messages": msgs}
    return None


def import_jsonl(data: bytes) -> ImportResult:
    """Parse a JSONL upload. Good lines import; each bad line is reported as (line number, reason)."""
    result = ImportResult()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for n, raw in enumerate(data.split(b"\n"), 1):
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            continue
        if len(raw) > MAX_LINE_BYTES:
            result.problems.append((n, f"line of {len(raw):,} bytes: one example may hold at most "
                                       f"{MAX_MESSAGE_CHARS:,} characters a message"))
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            result.problems.append((n, f"not UTF-8 text (byte {exc.start + 1})"))
            continue
        try:
            obj = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            result.problems.append((n, f"not valid JSON ({reason})"))
            continue
        if isinstance(obj, dict) and "messages" not in obj:
            obj = _from_prompt_completion(obj) or obj
        errs = format_errors(obj)
        if errs:
            result.problems.append((n, "; ".join(m for _, m in errs)))
            continue
        result.records.append({"messages": obj["messages"]})
        result.lines.append(n)
    if not result.records and not result.problems:
        result.problems.append((0, "the file is empty"))
    return result


CSV_PAIRS = (("prompt", "completion"), ("question", "answer"), ("user", "assistant"))


def import_csv(data: bytes) -> ImportResult:
    """A CSV with prompt/completion (or question/answer, user/assistant) columns and an optional system column."""
    result = ImportResult()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        result.problems.append((1, f"not UTF-8 text (byte {exc.start + 1})"))
        return result
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        if not header:
            result.problems.append((0, "the file is empty"))
            return result
        cols = {h.strip().lower(): i for i, h in enumerate(header)}
        pair = next(((q, a) for q, a in CSV_PAIRS if q in cols and a in cols), None)
        if pair is None:
            result.problems.append((1, "no prompt/completion or question/answer columns in the header"))
            return result
        qi, ai, si = cols[pair[0]], cols[pair[1]], cols.get("system")
        line = reader.line_num
        for row in reader:
            start, line = line + 1, reader.line_num  # a quoted field may span lines: report where the row starts
            if not any(c.strip() for c in row):
                continue
            q = row[qi].strip() if qi < len(row) else ""
            a = row[ai].strip() if ai < len(row) else ""
            if not q or not a:
                result.problems.append((start, f"empty {pair[0] if not q else pair[1]}"))
                continue
            if max(len(q), len(a)) > MAX_MESSAGE_CHARS:
                result.problems.append((start, f"a cell over {MAX_MESSAGE_CHARS:,} characters"))
                continue
            msgs = []
            if si is not None and si < len(row) and row[si].strip():
                msgs.append({"role": "system", "content": row[si].strip()})
            msgs += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
            result.records.append({"messages": msgs})
            result.lines.append(start)
    except csv.Error as exc:
        result.problems.append((reader.line_num, f"CSV error: {exc}"))
    return result


def import_file(name: str, data: bytes) -> ImportResult:
    return import_csv(data) if name.lower().endswith(".csv") else import_jsonl(data)


def validation_ids(ids: Sequence[int], fraction: float = 0.2, seed: int = 0) -> list[int]:
    """A reproducible random subset of ``ids`` to hold out for validation (at least 1 when there are 5+)."""
    ids = list(ids)
    k = round(len(ids) * fraction)
    if len(ids) >= 5:
        k = max(1, k)
    return sorted(random.Random(seed).sample(ids, k))
