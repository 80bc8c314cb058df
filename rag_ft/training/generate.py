"""Draft training examples from indexed document chunks: a chat model writes a question/answer pair per chunk.

Small local models often write unusable pairs (no question, an answer that is not in the passage,
loops), so every model output goes through a strict parser with a grounding check; when it fails we
fall back to a deterministic extractive pair built from the chunk's own sentences, and the example's
notes say which of the two produced it. Drafts keep their document and chunk hash, so a later change
to the document flags them stale (``ExampleStore.stale_ids``).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rag_ft.chat.prompt import format_passage, user_message
from rag_ft.db import connect
from rag_ft.index import chunks as chunk_rows
from rag_ft.text import overlap_words, prose_sentences
from rag_ft.training.examples import ExampleStore

DEFAULT_SYSTEM = ("You are a friendly support assistant. Answer in one or two short sentences and end with "
                  "the source in the form [Source: <document>, Section x.y].")
DEFAULT_FORMAT = "{answer} [Source: {document}, Section {section}]"

# seconds per chunk when this machine has not generated with the model yet. Local: issue #13 measured 175 s for
# 4 chunks with SmolLM2 on 2 busy CPU cores (first use, model loading included). An API model writes a
# ~100-token pair in a few seconds.
LOCAL_SECONDS_PER_CHUNK = 44.0
REMOTE_SECONDS_PER_CHUNK = 5.0
RUN_GAP_S = 600.0  # drafts saved further apart than this belong to different runs

WRITER_SYSTEM = "You write question and answer pairs for training a support assistant. Use only the passage."
WRITER_PROMPT = (
    "Passage from {document}, section {section}:\n<<<\n{text}\n>>>\n\n"
    "Write one question a customer could ask that this passage answers, then its answer using only the passage.\n"
    "Reply in exactly this format:\nQuestion: <the question>\nAnswer: <the answer>"
)


# a stored chunk of an indexed document: id, document_id, collection, document, chunk_index, hash, text, section, ...
SourceChunk = chunk_rows.StoredChunk


@dataclass
class Style:
    system_prompt: str = DEFAULT_SYSTEM
    answer_format: str = DEFAULT_FORMAT  # {answer}, {document}, {section}
    include_passage: bool = False  # True: the user turn carries the chunk as passage [1] (grounding data)


@dataclass
class Progress:
    done: int
    total: int
    example_id: int | None
    used_model: bool
    note: str


class Unusable(ValueError):
    """The model's output is not a usable question/answer pair; the message says why."""


def list_documents(db_path: Path | str) -> list[tuple[str, str, int]]:
    """(collection, document, number of chunks) for every indexed document; [] before any indexing."""
    conn = connect(db_path)
    try:
        return chunk_rows.documents_with_counts(conn)
    finally:
        conn.close()


def list_chunks(db_path: Path | str, documents: Sequence[tuple[str, str]] | None = None) -> list[SourceChunk]:
    """Chunks of the given (collection, document) pairs (all when None), in document order.

    Only documents marked 'indexed': one still 'indexing' (or failed) may hold a half-replaced set of rows.
    """
    conn = connect(db_path)
    try:
        return chunk_rows.source_chunks(conn, documents)
    finally:
        conn.close()


def section_label(section: str, chunk_index: int) -> str:
    """'3.2' from a heading like '3.2 Resetting the hub'; the heading itself when it has no number."""
    m = re.match(r"\s*(?:section\s+)?(\d+(?:\.\d+)*)", section or "", re.I)
    if m:
        return m.group(1)
    return section.strip() or f"part {chunk_index + 1}"


def _title(section: str) -> str:
    return re.sub(r"^\s*(?:section\s+)?\d+(?:\.\d+)*\.?\s*", "", section or "", flags=re.I).strip(" #:-")


def parse_pair(output: str, passage: str) -> tuple[str, str]:
    """Question and answer from a model's reply, or ``Unusable`` with the reason."""
    text = re.sub(r"\[Source:[^\]]*\]", "", output or "").strip()
    m = re.search(r"question\s*:\s*(.+?)\s*answer\s*:\s*(.+)", text, re.I | re.S)
    # small models often drop the labels: "<question>?" on the first line, the answer below
    m = m or re.match(r"\s*([^\n]+\?)\s*\n+\s*(?:(?:the\s+)?answer(?:\s+is)?\s*:\s*)?(.+)", text, re.I | re.S)
    if not m:
        raise Unusable("no 'Question: ... Answer: ...' in the reply")
    q = " ".join(m.group(1).split())
    a = " ".join(m.group(2).split())
    a = re.split(r"\s*question\s*:", a, flags=re.I)[0].strip()  # a second pair: keep the first
    if not q.endswith("?") or not 3 <= len(q.split()) <= 40:
        raise Unusable("the question is not a question of 3-40 words")
    if not 4 <= len(a.split()) <= 120:
        raise Unusable("the answer is not 4-120 words long")
    if a.lower().rstrip("?.") == q.lower().rstrip("?."):
        raise Unusable("the answer repeats the question")
    words = overlap_words(a)
    if not words:
        raise Unusable("the answer has no content words")
    source = set(overlap_words(passage))
    grounded = sum(1 for w in words if w in source) / len(words)
    if grounded < 0.6:
        raise Unusable(f"only {grounded:.0%} of the answer's words are in the passage")
    # a degenerate loop: the same 3 words again and again
    tri = [" ".join(words[i:i + 3]) for i in range(len(words) - 2)]
    if tri and len(set(tri)) < len(tri) / 2:
        raise Unusable("the answer repeats itself")
    return q, a


def extractive_pair(chunk: SourceChunk) -> tuple[str, str]:
    """A deterministic pair from the chunk itself: a question from its heading, the answer from its sentences."""
    lines = [ln.strip() for ln in chunk.text.strip().splitlines()]
    while len(lines) > 1 and (not lines[0] or (len(lines[0].split()) <= 12 and not lines[0].endswith((".", "!", "?")))):
        lines.pop(0)  # headings at the top of the chunk are not answer text
    sents = [s for s in prose_sentences("\n".join(lines)) if 5 <= len(s.split()) <= 60 and not s.endswith(":")]
    title = _title(chunk.section)
    if sents and title and sents[0].rstrip(".").lower() == title.lower():
        sents = sents[1:]
    answer = " ".join(sents[:2]) if sents else " ".join(chunk.text.split()[:60])
    if not answer.endswith((".", "!", "?")):
        answer += "."
    if title.endswith("?"):
        question = title  # FAQ headings are questions already
    elif title:
        # "Resetting the hub" -> "resetting the hub"; keep names and acronyms ("Wi-Fi", "LED") as written
        first = title.split()[0]
        lead = title[0].lower() + title[1:] if first[1:] == first[1:].lower() else title
        question = f"What should I know about {lead}?"
    else:
        stem = Path(chunk.document).stem.replace("_", " ").replace("-", " ")
        question = f"What does the {stem} document say in part {chunk.chunk_index + 1}?"
    return question, answer


def build_example(chunk: SourceChunk, question: str, answer: str, style: Style) -> list[dict[str, str]]:
    section = section_label(chunk.section, chunk.chunk_index)
    final = style.answer_format.format(answer=answer.strip(), document=chunk.document, section=section)
    if style.include_passage:
        block = format_passage(1, chunk.text, chunk.document, "", chunk.section)
        user = user_message(question, block)
    else:
        user = question
    return [{"role": "system", "content": style.system_prompt}, {"role": "user", "content": user},
            {"role": "assistant", "content": final}]


def ask_model(chat_model: Any, chunk: SourceChunk) -> str:
    from langchain_core.messages import HumanMessage, SystemMessage

    prompt = WRITER_PROMPT.format(document=chunk.document, section=chunk.section or "-", text=chunk.text.strip()[:3000])
    # a pair needs well under 160 tokens; the local model otherwise decodes its full 256 (~4 s more per chunk)
    extra = {"max_new_tokens": min(160, chat_model.max_new_tokens)} if hasattr(chat_model, "max_new_tokens") else {}
    reply = chat_model.invoke([SystemMessage(WRITER_SYSTEM), HumanMessage(prompt)], **extra)
    return str(reply.content)


def draft(chunk: SourceChunk, chat_model: Any, style: Style, model_name: str = "") -> tuple[list[dict], str, bool]:
    """(messages, notes, used_model) for one chunk: the model's pair if usable, else the extractive one."""
    name = model_name or getattr(chat_model, "model_name", "") or type(chat_model).__name__
    try:
        q, a = parse_pair(ask_model(chat_model, chunk), chunk.text)
        return build_example(chunk, q, a, style), f"Generated by {name}.", True
    except Unusable as exc:
        reason = str(exc)
    except Exception as exc:  # the model failed (network, key, out of memory): still give a draft
        reason = f"the model failed: {type(exc).__name__}: {exc}"
    q, a = extractive_pair(chunk)
    return (build_example(chunk, q, a, style),
            f"Extractive fallback: {name}'s output was unusable ({reason}). Review the wording.", False)


def seconds_per_chunk(store: ExampleStore, model_name: str, local: bool) -> tuple[float, str]:
    """(seconds per chunk, where the figure comes from) for generating with ``model_name`` here.

    Measured when this machine generated with that model before: a run saves each draft as soon as its chunk
    is done, so the time between consecutive drafts of one run is the time of one chunk (median of the last 20).
    """
    times = [datetime.fromisoformat(e.created_at).timestamp() for e in store.list(source="generated")
             if model_name and model_name in (e.notes or "") and e.created_at]
    times.sort()
    gaps = [b - a for a, b in zip(times, times[1:], strict=False) if 0 < b - a < RUN_GAP_S][-20:]
    if gaps:
        return statistics.median(gaps), f"measured on this computer over {len(gaps) + 1} drafts"
    if local:
        return LOCAL_SECONDS_PER_CHUNK, "the local model's pace on 2 CPU cores, including its loading"
    return REMOTE_SECONDS_PER_CHUNK, "a typical API model's pace"


def format_problem(answer_format: str) -> str | None:
    """Why an answer format cannot be filled in (an unknown placeholder, a lone brace); None when it can."""
    try:
        answer_format.format(answer="", document="", section="")
    except (KeyError, IndexError, ValueError) as exc:
        return f"The answer format has an unknown placeholder: {exc}. Use {{answer}}, {{document}}, {{section}}."
    return None


def estimate_text(n_chunks: int, seconds: float, source: str) -> str:
    """What the page says before generating: how long ``n_chunks`` will take."""
    total = n_chunks * seconds
    when = f"{total:.0f} s" if total < 120 else f"{total / 60:.0f} min"
    return (f"{n_chunks} chunk(s) at about {seconds:.0f} s each ({source}): about {when}. Stop keeps the drafts "
            "written so far.")


def generate(store: ExampleStore, chunks: Sequence[SourceChunk], chat_model: Any, style: Style | None = None,
             should_stop: Callable[[], bool] | None = None, model_name: str = "") -> Iterator[Progress]:
    """Write one draft per chunk, saving each as soon as it exists; yields progress after each chunk.

    Stopping (``should_stop`` true, or the caller abandoning the iterator) keeps every draft already saved.
    """
    style = style or Style()
    total = len(chunks)
    for i, chunk in enumerate(chunks, 1):
        if should_stop and should_stop():
            return
        messages, notes, used = draft(chunk, chat_model, style, model_name)
        ex_id = store.add(messages, status="draft", source="generated", notes=notes, tags=["generated"],
                          collection=chunk.collection, document_id=chunk.document_id, document=chunk.document,
                          chunk_id=chunk.id, chunk_hash=chunk.hash, section=chunk.section)
        yield Progress(i, total, ex_id, used, notes)
