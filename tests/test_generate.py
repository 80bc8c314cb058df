"""Drafts from document chunks: the parser rejects junk, the extractive fallback is grounded, and generation
with the real local model over a really indexed document keeps provenance and turns stale when it changes."""

import pytest

from rag_ft.training import generate
from rag_ft.training.examples import ExampleStore

CHUNK = generate.SourceChunk(
    id="c1", document_id="d1", collection="default", document="hub_manual.md", chunk_index=0, hash="h1",
    section="3.2 Resetting the hub",
    text="3.2 Resetting the hub\nHold the reset button for ten seconds until the light blinks orange. "
         "The hub keeps your rooms but forgets the Wi-Fi password. Reconnect it from the app afterwards.")


def test_parse_pair_accepts_a_grounded_pair():
    q, a = generate.parse_pair("Question: How do I reset the hub?\nAnswer: Hold the reset button for ten seconds "
                               "until the light blinks orange. [Source: x, Section 1]", CHUNK.text)
    assert q == "How do I reset the hub?" and a.startswith("Hold the reset button") and "[Source" not in a


def test_parse_pair_accepts_unlabelled_question_then_answer():
    q, a = generate.parse_pair("How do I reset the hub?\nThe answer is: Hold the reset button for ten seconds.",
                               CHUNK.text)
    assert (q, a) == ("How do I reset the hub?", "Hold the reset button for ten seconds.")


def test_faq_heading_is_the_question():
    faq = generate.SourceChunk("c", "d", "default", "faq.docx", 0, "h", "Is there a trial?\nYes, the Team plan has a "
                               "14-day free trial.", "Is there a trial?")
    assert generate.extractive_pair(faq) == ("Is there a trial?", "Yes, the Team plan has a 14-day free trial.")


@pytest.mark.parametrize("output, reason", [
    ("The hub is a device.", "no 'Question"),
    ("Question: reset\nAnswer: Hold the reset button for ten seconds.", "not a question"),
    ("What is the maximum number of requests?\nThe answer is: 35489672000000000000", "4-120 words|in the passage"),
    ("What's the best way to start?\n\nAvailable options:\n* Yes\n* No", "in the passage"),
    ("Question: How do I reset the hub?\nAnswer: Yes.", "4-120 words"),
    ("Question: How do I reset the hub?\nAnswer: Call our sales team in Paris for a new warranty plan.", "in the passage"),
    ("Question: How do I reset the hub?\nAnswer: " + "hold reset button " * 12, "repeats itself"),
])
def test_parse_pair_rejects_junk_with_a_reason(output, reason):
    with pytest.raises(generate.Unusable, match=reason):
        generate.parse_pair(output, CHUNK.text)


def test_extractive_pair_and_example_format():
    q, a = generate.extractive_pair(CHUNK)
    assert q == "What should I know about resetting the hub?"
    assert a.startswith("Hold the reset button for ten seconds") and a in " ".join(CHUNK.text.split())
    msgs = generate.build_example(CHUNK, q, a, generate.Style())
    assert [m["role"] for m in msgs] == ["system", "user", "assistant"]
    assert msgs[2]["content"].endswith("[Source: hub_manual.md, Section 3.2]")
    grounded = generate.build_example(CHUNK, q, a, generate.Style(include_passage=True))
    assert "[1] (hub_manual.md, 3.2 Resetting the hub)" in grounded[1]["content"] and q in grounded[1]["content"]


def test_section_label():
    assert generate.section_label("3.2 Resetting the hub", 0) == "3.2"
    assert generate.section_label("Section 4 Billing", 0) == "4"
    assert generate.section_label("Overview", 0) == "Overview"
    assert generate.section_label("", 4) == "part 5"


class Broken:
    model_name = "broken"

    def invoke(self, messages):
        raise ConnectionError("no route to host")


def test_model_failure_falls_back_and_says_so(settings):
    store = ExampleStore(settings.db_path)
    [p] = list(generate.generate(store, [CHUNK], Broken()))
    ex = store.get(p.example_id)
    assert not p.used_model and "Extractive fallback" in ex.notes and "no route to host" in ex.notes
    assert ex.source == "generated" and ex.chunk_hash == "h1" and ex.document == "hub_manual.md"


def test_stop_keeps_what_was_written(settings):
    store = ExampleStore(settings.db_path)
    chunks = [CHUNK, CHUNK, CHUNK]
    done = []
    for p in generate.generate(store, chunks, Broken(), should_stop=lambda: len(done) >= 2):
        done.append(p)
    assert len(done) == 2 and len(store.list()) == 2


DOC_V1 = b"""# Aurora Hub manual

## 3.1 Pairing the hub

Open the app and press the pair button on the hub. The light turns blue while pairing.

## 3.2 Resetting the hub

Hold the reset button for ten seconds until the light blinks orange. The hub keeps your rooms.
"""


@pytest.mark.slow
def test_generation_with_local_model_keeps_provenance_and_goes_stale(settings, local_embeddings, local_chat):
    from rag_ft.index import documents

    out = documents.index_files(settings, local_embeddings, [("hub_manual.md", DOC_V1)])
    assert out[0].status != "failed", out[0].message
    chunks = generate.list_chunks(settings.db_path, [("default", "hub_manual.md")])
    assert chunks and generate.list_documents(settings.db_path)[0][1] == "hub_manual.md"
    store = ExampleStore(settings.db_path)
    progress = list(generate.generate(store, chunks[:2], local_chat, model_name="SmolLM2-135M-Instruct"))
    assert [p.done for p in progress] == list(range(1, len(chunks[:2]) + 1))
    drafts = store.list(source="generated")
    assert len(drafts) == len(chunks[:2])
    for ex, ch in zip(drafts, chunks, strict=False):
        assert ex.status == "draft" and ex.document == "hub_manual.md" and ex.chunk_hash == ch.hash
        assert ex.document_id == ch.document_id and ex.chunk_id == ch.id
        assert ex.notes.startswith(("Generated by SmolLM2", "Extractive fallback"))  # says which wrote it
        assert ex.assistant.endswith("]") and "[Source: hub_manual.md, Section" in ex.assistant
    assert store.stale_ids() == set()

    # the document changes: the chunks it was generated from are gone
    changed = DOC_V1.replace(b"ten seconds", b"twenty seconds").replace(b"turns blue", b"turns green")
    out = documents.index_files(settings, local_embeddings, [("hub_manual.md", changed)])
    assert out[0].status != "failed", out[0].message
    assert store.stale_ids() == {e.id for e in drafts}

    # generated again from the new version: fresh, while the old drafts stay stale until deleted
    fresh = list(generate.generate(store, generate.list_chunks(settings.db_path)[:1], generate_broken := Broken()))
    assert generate_broken and fresh[0].example_id not in store.stale_ids()
    documents.delete_document(settings, "hub_manual.md")
    assert fresh[0].example_id in store.stale_ids()


def test_only_chunks_of_indexed_documents_are_offered(settings):
    """A document a killed run left 'indexing' (or one that failed) may hold half-replaced rows: not offered."""
    from rag_ft.db import connect, transaction
    from rag_ft.index import chunks
    from rag_ft.records import Chunk

    conn = connect(settings.db_path)
    with transaction(conn):
        for doc_id, name, status in [("d1", "ok.md", "indexed"), ("d2", "half.md", "indexing"),
                                     ("d3", "bad.md", "failed")]:
            conn.execute("INSERT INTO documents (id, collection, name, status) VALUES (?, 'default', ?, ?)",
                         (doc_id, name, status))
            rows = [Chunk(f"{name} part {i}. Some text here.", name, i, section="1 Intro") for i in range(2)]
            chunks.replace_for_document(conn, doc_id, "default", [f"{doc_id}-{i}" for i in range(2)], rows)
    conn.close()
    offered = generate.list_chunks(settings.db_path)
    assert [(c.document, c.chunk_index, c.id) for c in offered] == [("ok.md", 0, "d1-0"), ("ok.md", 1, "d1-1")]
    assert offered[0].section == "1 Intro" and offered[0].text.startswith("ok.md part 0")
    assert generate.list_chunks(settings.db_path, [("default", "half.md")]) == []
    assert generate.list_documents(settings.db_path) == [("default", "ok.md", 2)]
