import html

import streamlit as st

import app_state
from rag_ft.chat.chain import NO_DOCUMENTS, AnswerResult, ChainError, RagChain
from rag_ft.models.catalogue import available_models

s = app_state.settings()
st.title("Chat")

choices = available_models(s)
labels = [c.label for c in choices]
wanted = st.session_state.get("chat_model")  # set by "chat with this model" on the Fine-tuning page
if wanted in labels and st.session_state.get("chat_model_pick") != wanted:
    st.session_state["chat_model_pick"] = wanted

with st.container(border=True):
    c1, c2, c3, c4 = st.columns([3, 1.6, 1, 1.4], vertical_alignment="bottom")
    pick = c1.selectbox("Model", labels, key="chat_model_pick", help="Base models and every fine-tuned model.")
    use_rag = c2.toggle("RAG: use documents", value=True, key="chat_rag")
    k = c3.number_input("Passages (k)", 1, 12, s.retrieval_k, key="chat_k", disabled=not use_rag)
    collections = app_state.collections(s)
    collection = c4.selectbox("Collection", collections, key="chat_collection", disabled=not use_rag)
choice = next(c for c in choices if c.label == pick)

if st.button("New chat", icon=":material/add_comment:", key="new_chat"):
    st.session_state["chat_messages"] = []
messages: list[dict] = st.session_state.setdefault("chat_messages", [])


def source_card(c) -> None:
    p = c.passage
    where = " · ".join(x for x in (p.document, p.page_label, p.section) if x)
    flag = "" if c.supported else " · :orange[does not seem to support the sentence]"
    with st.expander(f"[{c.marker}] {where} · score {p.score:.2f}{flag}"):
        body = html.escape(p.text)
        for word in sorted(c.highlights, key=len, reverse=True):
            body = body.replace(html.escape(word), f"<mark>{html.escape(word)}</mark>")
        st.markdown(f"<div style='white-space: pre-wrap'>{body}</div>", unsafe_allow_html=True)
        if c.attached:
            st.caption("The model wrote no marker here; this passage was attached because it supports the sentence.")


def send_to_training(i: int, answer: str) -> None:
    question = messages[i - 1]["content"] if i > 0 else ""
    result: AnswerResult | None = messages[i].get("result")
    example_id = app_state.add_chat_example(s, question, answer, result)
    st.toast(f"Added to the training data as a draft (example {example_id})." if example_id else
             "The training data store is not available.")


def show_assistant(i: int, m: dict) -> None:
    if m.get("error"):
        st.error(m["error"], icon=":material/error:")
        if m.get("content"):
            st.markdown(m["content"])
        return
    st.markdown(m["content"])
    result: AnswerResult | None = m.get("result")
    if result is None:
        return
    for c in result.citations:
        source_card(c)
    if result.rag and not result.covered:
        st.caption("Nothing in your documents passed the relevance threshold, so no sources are cited.")
    rag = f"RAG on, k={m.get('k')}, collection `{m.get('collection')}`" if result.rag else "RAG off"
    st.caption(f"{result.model} · {rag} · first token {result.ttft_s:.2f} s · total {result.total_s:.2f} s"
               f" · retrieval {result.retrieval_s:.2f} s")
    fb = st.feedback("thumbs", key=f"feedback_{i}")
    if fb == 1 and st.button("Send to training data", key=f"to_train_{i}", icon=":material/add_task:"):
        send_to_training(i, m["content"])
    with st.popover("Edit answer", icon=":material/edit:"):
        edited = st.text_area("Better answer", m["content"], key=f"edit_{i}")
        if st.button("Save as training example", key=f"save_edit_{i}"):
            send_to_training(i, edited)


for i, m in enumerate(messages):
    with st.chat_message(m["role"]):
        if m["role"] == "user":
            st.markdown(m["content"])
        else:
            show_assistant(i, m)

question = st.chat_input("Ask a question about your documents")
if question:
    history = [{"role": m["role"], "content": m["content"]} for m in messages if not m.get("error")]
    messages.append({"role": "user", "content": question})
    with st.chat_message("user"):
        st.markdown(question)
    with st.chat_message("assistant"):
        entry = {"role": "assistant", "content": "", "k": int(k), "collection": collection}
        if use_rag and not app_state.has_documents(s, collection):
            entry["error"] = NO_DOCUMENTS
        else:
            try:
                model = app_state.chat_model(s, choice)
                app_state.warm_up(s, model)
                retriever = app_state.retriever(s) if use_rag else None
                chain = RagChain(model, retriever, k=int(k), collection=collection, model_label=choice.label)
                box: dict = {}

                def pieces():
                    for item in chain.stream(question, history):
                        if isinstance(item, AnswerResult):
                            box["result"] = item
                        else:
                            yield item

                st.write_stream(pieces())
                entry["result"] = box["result"]
                entry["content"] = box["result"].text
            except ChainError as exc:
                entry["error"], entry["content"] = str(exc), exc.partial
            except Exception as exc:  # e.g. a model that cannot load: say so, keep the conversation
                entry["error"] = f"Could not answer: {exc}"
        messages.append(entry)
    st.rerun()
