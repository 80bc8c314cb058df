"""Documents: upload and index files, see each file's outcome, manage indexed documents, search them.

File names, reasons, headings and passages come from the files: they are shown inert (``rag_ft.untrusted``),
so an image link in them is text, never a request.
"""

import pandas as pd
import streamlit as st

import app_state
from rag_ft.index.documents import (
    check_embedding,
    delete_document,
    document_chunks,
    index_files,
    list_collections,
    list_documents,
    recover_interrupted,
    reembed,
    reindex_document,
    sample_files,
)
from rag_ft.index.vectors import EmbeddingMismatch, IndexProblem
from rag_ft.text import show_bullets
from rag_ft.untrusted import inert, inert_line, redact

ICONS = {"indexed": ":green[:material/check_circle:]", "updated": ":green[:material/sync:]",
         "unchanged": ":material/done_all:", "failed": ":red[:material/error:]"}
S = st.session_state

s = app_state.settings()
st.title("Documents")
st.caption("Upload files, and they are split into passages that keep their page and section, embedded and "
           "stored in Chroma. Re-uploading an unchanged file does nothing; a changed file replaces its passages.")

known = list_collections(s) or ["default"]
collection = st.selectbox(
    "Collection", known, key="documents_collection", accept_new_options=True,
    help="Documents are grouped in collections; type a new name to start one.",
) or "default"

# ---- a collection built with another embedding model cannot be searched or extended
try:
    check_embedding(s, collection)
except EmbeddingMismatch as exc:
    st.error(inert(redact(exc)), icon=":material/warning:")
    if st.button("Re-embed with the current model", type="primary", key="reembed_btn"):
        with st.status("Re-embedding every passage with the current model...", expanded=True) as status:
            bar = st.progress(0.0)
            n = reembed(s, app_state.embeddings(s), collection, progress=lambda f, m: bar.progress(f, text=m))
            status.update(label=f"Re-embedded {n} passage(s) with the current model.", state="complete")
        st.rerun()
    st.stop()
except IndexProblem as exc:  # Chroma server unreachable
    st.error(inert(redact(exc)), icon=":material/cloud_off:")
    st.stop()

docs = list_documents(s, collection)
if any(d.status == "indexing" for d in docs):
    done = recover_interrupted(s, app_state.embeddings(s), collection)
    if done is None:
        st.info("Indexing is running in another session; refresh in a moment.", icon=":material/hourglass:")
    elif done:
        st.info(inert("Finished indexing interrupted by a restart: " + ", ".join(o.name for o in done)),
                icon=":material/restart_alt:")
        docs = list_documents(s, collection)


def run_indexing(files: list[tuple[str, bytes]], label: str) -> None:
    """Index the batch in one call (one lock, one recovery) inside an st.status, writing each file's outcome as
    soon as the engine reports it."""
    with st.status(f"{label}: {len(files)} file(s)...", expanded=True) as status:
        bar = st.progress(0.0, text="starting")
        outcomes = index_files(
            s, app_state.embeddings(s), files, collection,
            progress=lambda frac, msg: bar.progress(min(1.0, frac), text=inert_line(msg)),
            on_outcome=lambda i, o: st.markdown(f"{ICONS[o.status]} **{inert(o.name)}**: {inert(redact(o.message))}"))
        failed = sum(o.status == "failed" for o in outcomes)
        counts = {k: sum(o.status == k for o in outcomes) for k in ("indexed", "updated", "unchanged")}
        summary = ", ".join(f"{v} {k}" for k, v in counts.items() if v) or "nothing indexed"
        if failed:
            summary += f", {failed} failed"
        status.update(label=f"{label}: {summary}", state="error" if failed == len(outcomes) else "complete",
                      expanded=bool(failed))
    S["documents_outcomes"] = outcomes
    st.toast(summary, icon=":material/description:")


# ---- upload
with st.container(border=True):
    max_mb = st.get_option("server.maxUploadSize")
    uploads = st.file_uploader(
        "Add files", accept_multiple_files=True, key="documents_upload",
        help=f"Up to {max_mb} MB per file. PDF (scanned ones too, via OCR), Word, PowerPoint, Excel, HTML, "
             "Markdown, text, CSV, e-mail (EML/MSG), EPUB, RTF, ODT and images.",
    )
    left, right = st.columns([1, 1])
    if left.button("Index files", type="primary", disabled=not uploads, key="index_btn", icon=":material/upload:"):
        run_indexing([(f.name, f.getvalue()) for f in uploads], "Indexing")
    samples = sample_files()
    if right.button("Load sample documents", disabled=not samples, key="samples_btn", icon=":material/library_books:",
                    help="Index the demo documents of a fictional product's support team (sample_docs/)."):
        run_indexing(samples, "Sample documents")

outcomes = S.get("documents_outcomes")
if outcomes:
    st.subheader("Last upload")
    st.dataframe(
        pd.DataFrame([{"File": o.name, "Result": o.status, "Chunks": o.chunks or None, "Pages": o.pages or None,
                       "Newly embedded": o.embedded, "Details": redact(o.error or "; ".join(o.warnings))}
                      for o in outcomes]),
        hide_index=True, width="stretch", key="documents_outcome_table",
    )
    for o in outcomes:  # a table cell cuts a long reason: each failure in full, where it cannot be missed
        if o.status == "failed":
            st.error(f"**{inert(o.name)}** was not indexed: {inert(redact(o.error))}", icon=":material/error:")
    docs = list_documents(s, collection)


def ask_delete(doc_id: str) -> None:
    S["documents_confirm_delete"] = doc_id


# ---- indexed documents
st.subheader(f"Indexed documents ({sum(d.status == 'indexed' for d in docs)})")
if not docs:
    st.caption("No documents in this collection yet: upload files or load the sample documents.")
for d in docs:
    with st.container(border=True, key=f"doc_{d.id}"):
        info, reindex, delete = st.columns([6, 1, 1], vertical_alignment="center")
        pages = f" · {d.pages} page(s)" if d.pages else ""
        badge = {"indexed": ":green-badge[indexed]", "indexing": ":orange-badge[indexing]"}.get(
            d.status, ":red-badge[:material/error: failed]")
        info.markdown(f"**{inert(d.name)}** {badge}  \n{d.chunk_count} chunk(s){pages} · {d.size / 1024:.1f} KB · "
                      f"indexed {d.indexed_at.replace('T', ' ').replace('+00:00', ' UTC') or '-'}")
        if d.error:
            info.error(inert(redact(d.error)), icon=":material/error:")
        if reindex.button("Re-index", key=f"reindex_{d.id}", icon=":material/refresh:"):
            with st.spinner(f"Re-indexing {inert_line(d.name)}..."):
                o = reindex_document(s, app_state.embeddings(s), d.name, collection)
            st.toast(inert_line(f"{d.name}: {redact(o.message)}", 300))
            st.rerun()
        delete.button("Delete", key=f"delete_{d.id}", icon=":material/delete:", on_click=ask_delete, args=(d.id,))
        if S.get("documents_confirm_delete") == d.id:  # a second, explicit click deletes
            ask, really, keep = st.columns([4, 2, 1], vertical_alignment="center")
            ask.warning(f"Delete **{inert(d.name)}** and its {d.chunk_count} chunk(s) from the index?",
                        icon=":material/delete:")
            if really.button("Really delete", key=f"really_delete_{d.id}", type="primary"):
                delete_document(s, d.name, collection)
                st.toast(inert_line(f"Deleted {d.name}"))
                S.pop("documents_outcomes", None)
                S.pop("documents_confirm_delete", None)
                st.rerun()
            keep.button("Keep", key=f"keep_{d.id}", on_click=S.pop, args=("documents_confirm_delete", None))

# ---- chunk viewer: the chunks' text first; click a row to read one in full
indexed = [d.name for d in docs if d.status == "indexed"]
if indexed:
    with st.expander("Chunk viewer", icon=":material/view_agenda:"):
        name = st.selectbox("Document", indexed, key="documents_chunk_doc")
        chunks = document_chunks(s, name, collection)
        picked = st.dataframe(
            pd.DataFrame([{"#": c.chunk_index, "Text": show_bullets(c.text), "Section": c.section,
                           "Pages": ", ".join(map(str, c.pages)), "Characters": len(c.text),
                           "Element types": ", ".join(c.element_types)} for c in chunks]),
            hide_index=True, width="stretch", key="documents_chunk_table", on_select="rerun",
            selection_mode="single-row", column_config={"Text": st.column_config.TextColumn(width="large")},
        )
        rows = picked.selection.rows if picked is not None else []
        if chunks:
            c = chunks[rows[0] if rows and rows[0] < len(chunks) else 0]
            where = " · ".join(x for x in (f"p. {', '.join(map(str, c.pages))}" if c.pages else "", c.section) if x)
            with st.container(border=True, key="documents_chunk_text"):
                st.caption(inert_line(f"Chunk {c.chunk_index}" + (f" · {where}" if where else "")))
                st.markdown(inert(show_bullets(c.text)))

# ---- search
st.subheader("Search your documents")
cols = st.columns([5, 1, 1], vertical_alignment="bottom")
query = cols[0].text_input("Search your documents", key="documents_query", label_visibility="collapsed",
                           placeholder="Ask a question or type a keyword, e.g. an error code")
k = cols[1].number_input("Top k", 1, 20, s.retrieval_k, key="documents_k")
hybrid = cols[2].toggle("Hybrid", value=s.hybrid, key="documents_hybrid", help="BM25 keywords + vector similarity")
if query:
    passages = app_state.retriever(s).search(query, k=int(k), collection=collection, hybrid=hybrid)
    if not passages:
        st.info(f"No passage scores above the relevance threshold ({s.relevance_threshold:.2f}).")
    for p in passages:
        with st.container(border=True):
            where = " · ".join(x for x in (p.page_label, p.section) if x)
            detail = ", ".join(f"{m} {v:.2f}" for m, v in p.scores.items())
            st.markdown(f"**{inert(p.document)}**" + (f" · {inert(where)}" if where else "")
                        + f" · score **{p.score:.2f}** ({detail})")
            st.text(show_bullets(p.text[:1200] + ("..." if len(p.text) > 1200 else "")))
