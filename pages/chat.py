"""Chat: ask the documents, see the sources, send good (or bad) answers to the training data.

Everything shown here that we did not write (answers, passages, headings, file names, error messages) goes
through ``rag_ft.untrusted.inert`` first: Markdown would otherwise turn ``![x](http://host/?q=...)`` in a
document or an answer into a request the browser makes with no click.
"""

import streamlit as st

import app_state
from rag_ft.chat.chain import NO_DOCUMENTS, AnswerResult, ChainError, RagChain
from rag_ft.chat.citations import SMALL_MODEL_NOTE, marked_html, support_summary
from rag_ft.models.catalogue import available_models
from rag_ft.untrusted import inert, inert_line, redact, short

LOADING = "Loading the model... (first use only)"

s = app_state.settings()
st.title("Chat")

choices = available_models(s)
labels = [c.label for c in choices]
# "Chat with this model" on the Fine-tuning page sets chat_model: pick it once, then leave the picker to the user
# (picking it on every run would undo any other choice they make)
wanted = st.session_state.get("chat_model")
if wanted and st.session_state.get("_chat_model_applied") != wanted:
    st.session_state["_chat_model_applied"] = wanted
    if wanted in labels:
        st.session_state["chat_model_pick"] = wanted
    else:
        st.warning(f"The model {inert_line(wanted)} is not available here (yet): pick it once it is listed.",
                   icon=":material/warning:")

with st.container(border=True):
    c1, c2, c3, c4 = st.columns([3, 1.6, 1, 1.4], vertical_alignment="bottom")
    pick = c1.selectbox("Model", labels, key="chat_model_pick", help="Base models and every fine-tuned model.")
    use_rag = c2.toggle("RAG: use documents", value=True, key="chat_rag")
    k = c3.number_input("Passages (k)", 1, 12, s.retrieval_k, key="chat_k", disabled=not use_rag)
    collections = app_state.collections(s)
    collection = c4.selectbox("Collection", collections, key="chat_collection", disabled=not use_rag)
choice = next(c for c in choices if c.label == pick)

if st.button("New chat", icon=":material/add_comment:", key="new_chat"):
    app_state.new_chat()
cid, messages = app_state.chat_conversation(s)


def as_text(text: str) -> str:
    """Markdown that shows ``text`` as it is, line breaks included (a lone newline would fold into a space)."""
    return inert(text).replace("\n", "  \n")


def save() -> None:
    app_state.save_conversation(s, cid, messages)


def source_card(c) -> None:
    p = c.passage
    where = inert_line(" · ".join(x for x in (p.document, p.page_label, p.section) if x))
    flag = "" if c.supported else " · :orange[does not seem to support the sentence]"
    if moved := c.moved_from:
        flag += " · moved from " + ", ".join(f"[{n}]" for n in moved)
    with st.expander(f"[{c.marker}] {where} · score {p.score:.2f}{flag}"):
        # no raw newline inside: a blank line would end the HTML block and Markdown would resume
        st.markdown(f"<div style='white-space: pre-wrap'>{marked_html(p.text, c.highlights)}</div>",
                    unsafe_allow_html=True)
        if c.attached:
            st.caption("The model wrote no marker here; this passage was attached because it supports the sentence.")
        if moved:
            st.caption(f"The model cited {', '.join(f'[{n}]' for n in moved)} here, a passage that does not support "
                       "the sentence; the citation was moved to this one, which does.")


def check_notes(m: dict, result: AnswerResult) -> None:
    """What the citation check found (how well the answer is supported, claims no passage backs, dropped
    markers), and the small local model's caveat. The sentences are the model's: shown inert."""
    if result.rag and result.covered and not m.get("edited"):  # an edit is no longer the text that was checked
        unsupported = result.unsupported
        if line := support_summary(result.support_level, result.claims, len(unsupported)):
            st.caption(line)
        if unsupported:
            st.warning("Not backed by any retrieved passage:  \n" + "  \n".join(
                f"\u2022 {inert_line(x)}" for x in unsupported), icon=":material/report:")
        if dropped := result.dropped_markers:
            st.caption(f"Removed {', '.join(f'[{n}]' for n in dropped)}: the cited passage does not support its "
                       "sentence, and no other retrieved passage does.")
    if m.get("small_model"):
        st.info(SMALL_MODEL_NOTE, icon=":material/info:")


def question_of(i: int) -> str:
    """The question answer ``i`` replies to, as the user typed it (never the prompt built around it)."""
    return messages[i - 1]["content"] if i > 0 and messages[i - 1]["role"] == "user" else ""


def training_actions(i: int, m: dict) -> None:
    """Thumbs up (or an edit) -> send once; thumbs down -> say what was wrong, saved as a draft to fix."""
    result: AnswerResult | None = m.get("result")
    fb = st.feedback("thumbs", key=f"feedback_{cid}_{i}", default=m.get("rating"))
    if fb != m.get("rating"):
        m["rating"] = fb
        save()
    if fb == 1 or m.get("edited"):
        sent = m.get("example_id")
        if st.button("Sent" if sent else "Send to training data", key=f"to_train_{i}", disabled=bool(sent),
                     icon=":material/check:" if sent else ":material/add_task:") and not sent:
            m["example_id"] = app_state.add_chat_example(s, question_of(i), m["content"], result)
            save()
            st.rerun()
        if sent:
            st.caption(f"In the training data as draft example {sent}.")
    if fb == 0:
        if m.get("fix_example_id"):
            st.caption(f"Saved as draft example {m['fix_example_id']} to fix on the Training data page.")
        else:
            with st.form(key=f"fix_form_{cid}_{i}"):
                note = st.text_area("What was wrong?", key=f"fix_note_{cid}_{i}", height=80,
                                    placeholder="e.g. wrong document, a made-up number, should have said the "
                                                "documents do not cover this")
                if st.form_submit_button("Save as an example to fix", key=f"fix_save_{i}"):
                    notes = "Thumbs down" + (f": {note.strip()}" if note.strip() else "")
                    m["fix_example_id"] = app_state.add_chat_example(s, question_of(i), m["content"], result, notes)
                    save()
                    st.rerun()
    with st.popover("Edit answer", icon=":material/edit:"):
        edited = st.text_area("Better answer", m["content"], key=f"edit_{cid}_{i}")
        if st.button("Save the edit", key=f"save_edit_{i}") and edited.strip() and edited != m["content"]:
            m.setdefault("original", m["content"])
            m["content"], m["edited"] = edited, True
            if m.get("example_id"):  # already sent: the example follows the edit (still one example)
                app_state.update_chat_example(s, m["example_id"], edited)
            save()
            st.rerun()


def show_assistant(i: int, m: dict) -> None:
    if m.get("error"):
        st.error(inert(m["error"]), icon=":material/error:")
        if m.get("content"):
            st.markdown(as_text(m["content"]))
        return
    st.markdown(as_text(m["content"]))
    if m.get("edited"):
        st.caption("Edited by you.")
    result: AnswerResult | None = m.get("result")
    if result is None:
        return
    for c in result.citations:
        source_card(c)
    if result.rag and not result.covered:
        st.caption("Nothing in your documents passed the relevance threshold, so no sources are cited.")
    check_notes(m, result)
    rag = f"RAG on, k={m.get('k')}, collection {inert_line(m.get('collection'))}" if result.rag else "RAG off"
    load = m.get("load_s") or 0.0
    loading = f" · model loading {load:.1f} s (first use only, not in these timings)" if load >= 0.05 else ""
    st.caption(f"{inert_line(result.model)} · {rag} · first token {result.ttft_s:.2f} s · total "
               f"{result.total_s:.2f} s · retrieval {result.retrieval_s:.2f} s{loading}")
    training_actions(i, m)


for i, m in enumerate(messages):
    with st.chat_message(m["role"]):
        if m["role"] == "user":
            st.markdown(as_text(m["content"]))
        else:
            show_assistant(i, m)

question = st.chat_input("Ask a question about your documents")
if question:
    history = [{"role": m["role"], "content": m["content"]} for m in messages if not m.get("error")]
    messages.append({"role": "user", "content": question})
    save()
    with st.chat_message("user"):
        st.markdown(as_text(question))
    with st.chat_message("assistant"):
        # the small offline model's answers carry a caveat (kept with the message: shown again after a reload)
        entry = {"role": "assistant", "content": "", "k": int(k), "collection": collection,
                 "small_model": choice.backend == "local"}
        if use_rag and not app_state.has_documents(s, collection):
            entry["error"] = NO_DOCUMENTS
        else:
            try:
                # loading is shown here, in the answer's place, and kept out of the answer's timings
                with st.empty(), st.spinner(LOADING, show_time=True):
                    model = app_state.chat_model(s, choice)
                    entry["load_s"] = app_state.warm_up(s, model, rag=use_rag)
                retriever = app_state.retriever(s) if use_rag else None
                chain = RagChain(model, retriever, k=int(k), collection=collection, model_label=choice.label)
                box: dict = {}

                def pieces():
                    for item in chain.stream(question, history):
                        if isinstance(item, AnswerResult):
                            box["result"] = item
                        else:
                            yield as_text(item)

                st.write_stream(pieces())
                entry["result"] = box["result"]
                entry["content"] = box["result"].text
            except ChainError as exc:
                entry["error"], entry["content"] = redact(exc), exc.partial
            except Exception as exc:  # e.g. a model that cannot load: say so, keep the conversation
                entry["error"] = f"Could not answer: {short(exc)}"
        messages.append(entry)
        save()
    st.rerun()
