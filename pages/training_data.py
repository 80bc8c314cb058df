"""Training data: a grid to build, review and validate fine-tuning examples; every edit is saved as it is made.

The grid's input DataFrame is kept stable in session state (rebuilt only when the filters change or after
a bulk action), and the editor's delta is saved at the top of every rerun (``rag_ft.training.grid``), so the
editor keeps its place after an edit and a reload shows exactly what was typed.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

import app_state
from rag_ft.training import dataset, generate, grid, launch
from rag_ft.training.examples import SOURCES, SPLITS, STATUSES, ExampleStore
from rag_ft.untrusted import inert, redact

SAMPLE = Path(__file__).resolve().parent.parent / "sample_docs" / "sample_dataset.jsonl"
S = st.session_state
FILTER_KEYS = ("td_search", "td_status", "td_split", "td_source", "td_problem")
app_state.restore_widgets(FILTER_KEYS)  # the filters are where the user left them before visiting another page

s = app_state.settings()
store = ExampleStore(s.db_path)
st.title("Training data")
st.caption("Examples of how answers should look, in OpenAI's fine-tuning chat format. Every edit is saved as you make it.")


def bump() -> None:
    """Rebuild the grid from the database on this rerun (after bulk changes, imports, detail edits)."""
    S["td_version"] = S.get("td_version", 0) + 1


def flash(message: str) -> None:
    """Say what a button did after the rerun that rebuilds the grid."""
    S["td_flash"] = message
    bump()
    st.rerun()


# ---- 1. save what the user typed into the grid on the previous interaction --------------------
if key := S.get("td_grid_key"):
    saved = grid.save_delta(store, S.get("td_grid_ids", []), S.get(key), S.setdefault(f"{key}_state", grid.EditorState()))
    for err in saved.errors:
        st.error(inert(err))
    if saved.labels:
        st.toast(inert("Saved: " + ", ".join(saved.labels[:4]) + (" ..." if len(saved.labels) > 4 else "")),
                 icon=":material/check:")
    for ex_id, problem in saved.problems.items():  # the Problem column refreshes on Re-check: say it now
        st.toast(inert(f"#{ex_id} still has a problem: {problem}"), icon=":material/warning:")

# ---- 2. counts, always visible -------------------------------------------------------------------
counts = store.counts()
for col, (label, value) in zip(st.columns(6), grid.count_metrics(counts), strict=True):
    col.metric(label, value)


# ---- 3. import ------------------------------------------------------------------------------------
def run_import(name: str, data: bytes, skip_existing: bool = False, approve: bool = False) -> None:
    S["td_last_import"] = grid.import_examples(store, name, data, skip_existing, approve)
    bump()


def import_sample(approve: bool = False) -> None:
    if SAMPLE.exists():
        run_import(SAMPLE.name, SAMPLE.read_bytes(), skip_existing=True, approve=approve)  # twice: nothing doubles
    else:
        S["td_flash_error"] = f"{SAMPLE} is missing."


# callbacks run before the script, so the counts above already include what they changed
with st.container(horizontal=True):
    st.button("Import sample dataset", icon=":material/dataset:", key="td_sample", on_click=import_sample,
              help="64 examples in the style of the sample documents, imported as drafts to review")
    st.button("Import sample and approve", icon=":material/done_all:", key="td_sample_approve",
              on_click=import_sample, args=(True,), help="The same 64 examples, approved: ready to train")
    st.button("Re-check", icon=":material/refresh:", key="td_refresh", on_click=bump,
              help="Re-read and re-validate the table")
if S.get("td_flash_error"):
    st.error(inert(S.pop("td_flash_error")))

with st.expander("Import a file (JSONL or CSV)", icon=":material/upload:"):
    st.caption("JSONL in OpenAI's chat format (one `{\"messages\": [...]}` per line), or a CSV with "
               "prompt/completion or question/answer columns (and an optional system column). Bad lines are "
               "listed by number; the good ones still import.")
    up = st.file_uploader("File", type=["jsonl", "json", "csv"], key="td_upload")
    with st.container(horizontal=True):
        for label, key, approve in (("Import file", "td_import", False), ("Import and approve", "td_import_approve", True)):
            st.button(label, key=key, disabled=up is None, on_click=lambda a=approve: run_import(
                S["td_upload"].name, S["td_upload"].getvalue(), approve=a))

if last := S.get("td_last_import"):
    (st.warning if last.problems else st.success)(inert(last.message()))
    if last.problems:
        st.code("\n".join(f"line {n}: {reason}" if n else reason for n, reason in last.problems[:200]), language=None)

# ---- 4. filters and the grid ---------------------------------------------------------------------------
f1, f2, f3, f4, f5 = st.columns([3, 2, 2, 2, 2])
filters = grid.Filters(
    f1.text_input("Search all text", key="td_search", placeholder="words in any message, tag or note"),
    tuple(f2.multiselect("Status", STATUSES, key="td_status")), tuple(f3.multiselect("Split", SPLITS, key="td_split")),
    tuple(f4.multiselect("Source", SOURCES, key="td_source")),
    f5.selectbox("Validation", grid.PROBLEM_FILTERS, key="td_problem"))
app_state.keep_widgets(FILTER_KEYS)

models = dataset.models()
model = S.get("td_model", models[0] if s.active_provider == "openai" else models[-1])
signature = (filters, model, S.get("td_version", 0))
if S.get("td_signature") != signature:
    shown = grid.build(store, filters, model)
    if shown.token_warning:
        st.warning(shown.token_warning)
    S["td_df"] = pd.DataFrame(shown.rows, columns=list(grid.COLUMNS))
    S["td_grid_ids"] = shown.ids
    S["td_nonce"] = S.get("td_nonce", 0) + 1
    S["td_grid_key"] = f"td_grid_{S['td_nonce']}"  # a new df gets a new editor: old deltas never re-apply
    S["td_signature"] = signature

ids: list[int] = S["td_grid_ids"]
st.caption(f"{len(ids)} example(s) shown. Click a cell to edit; changes save immediately. "
           "Multi-turn examples (turns > 1) show the first question and the last answer: edit them below.")
Col = st.column_config
kinds = {"number": Col.NumberColumn, "text": Col.TextColumn, "check": Col.CheckboxColumn, "select": Col.SelectboxColumn}
st.data_editor(
    S["td_df"], key=S["td_grid_key"], hide_index=True, num_rows="dynamic", width="stretch", height=420,
    column_order=grid.SHOWN_ORDER, disabled=grid.READ_ONLY,
    column_config={c: kinds[k](**spec) for c, (k, spec) in grid.column_specs(model).items()},
)

# ---- 5. bulk actions on the filtered rows ------------------------------------------------------------
live = {e.id: e for e in store.get_many(ids)}  # the shown rows not deleted since, in one query
with st.container(horizontal=True):
    n = len(live)
    for label, fields, icon in [("Approve", {"status": "approved"}, ":material/check_circle:"),
                                ("Reject", {"status": "rejected"}, ":material/cancel:"),
                                ("Move to validation", {"split": "validation"}, ":material/call_split:"),
                                ("Move to train", {"split": "train"}, ":material/model_training:")]:
        if st.button(f"{label} {n} shown", icon=icon, key=f"td_bulk_{label}", disabled=not n):
            flash(f"{label}: {store.set_many(list(live), **fields)} example(s) changed.")
    if st.button(f"Delete {n} shown", icon=":material/delete:", key="td_bulk_delete", disabled=not n):
        flash(f"Deleted {store.delete(list(live))} example(s). Restore them below if that was a mistake.")
    if st.button("Hold out 20% of approved for validation", key="td_holdout",
                 disabled=counts["status"]["approved"] < 5):
        held, kept = store.hold_out(0.2)
        flash(f"{len(held)} approved example(s) now in validation, {len(kept)} in train.")
if S.get("td_flash"):
    st.success(inert(S.pop("td_flash")))

# ---- 6. detail editor (multi-turn, tags, notes, provenance) and restore -------------------------------
with st.expander("Edit one example in full (multi-turn, tags, notes)", icon=":material/edit_note:"):
    if not live:
        st.caption("No example shown.")
    else:
        pick = st.selectbox("Example", list(live), format_func=lambda i: f"#{i} {live[i].user[:70]}", key="td_pick")
        ex = live[pick]
        st.caption(inert(f"Source: {ex.source_label} · created {ex.created_at[:19]} · updated {ex.updated_at[:19]}"
                         + (f" · section: {ex.section}" if ex.section else "")))
        msgs = pd.DataFrame([{"role": m.get("role", ""), "content": m.get("content", "")} for m in ex.messages
                             if isinstance(m, dict)], columns=["role", "content"])
        edited = st.data_editor(msgs, key=f"td_detail_{pick}_{ex.updated_at}", num_rows="dynamic", width="stretch",
                                hide_index=True, column_config={"content": Col.TextColumn("Content", width="large"),
                                "role": Col.SelectboxColumn("Role", options=grid.ROLES, required=True)})
        tags = st.text_input("Tags (comma-separated)", ", ".join(ex.tags), key=f"td_tags_{pick}")
        notes = st.text_area("Notes", ex.notes, key=f"td_notes_{pick}")
        if st.button("Save example", key="td_detail_save", type="primary"):
            flash(grid.save_detail(store, pick, edited.to_dict("records"), tags, notes))
    deleted = {e.id: e for e in store.list(deleted_only=True)}
    if deleted:
        st.divider()
        back = st.multiselect("Deleted examples", list(deleted), key="td_restore_pick",
                              format_func=lambda i: f"#{i} {deleted[i].user[:70]}")
        if st.button(f"Restore {len(back) or 'all'}", key="td_restore", icon=":material/restore_from_trash:"):
            flash(f"Restored {store.restore(back or list(deleted))} example(s).")

# ---- 7. check before training: validation, tokens, epochs, cost, time; export ------------------------
st.subheader("Check before training")
c1, c2 = st.columns([3, 1])
c1.selectbox("Model to fine-tune", models, index=models.index(model), key="td_model",
             help=f"OpenAI prices as of {dataset.PRICES_AS_OF}; the local model trains on this machine's CPU.")
epochs_in = c2.number_input("Epochs (0 = OpenAI's default)", 0, 50, 0, key="td_epochs")
check = launch.check_approved(s.db_path, model, epochs_in)
if note := grid.approval_note(counts):
    st.info(note, icon=":material/info:")
if check.estimate is None:  # no offline tokenizer: say so, keep the rest of the page
    st.error(inert(redact(check.error)))
else:
    est = check.estimate
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Approved training examples", est.examples)
    m2.metric("Tokens per epoch", f"{est.tokens:,}")
    m3.metric("Epochs", est.epochs, help="OpenAI's default: 3, scaled so examples x epochs is between 100 and 25,000")
    label, value, why = check.price()
    m4.metric(label, value, help=why)
    for level, text in check.problems:
        (st.error if level == "error" else st.warning)(inert(text))
    if check.passes:
        st.success(f"{est.examples} approved training examples pass OpenAI's format checks.")
    if est.token_counts:
        st.caption("Example length (tokens)")
        st.bar_chart(grid.histogram_frame(est.token_counts), height=200, sort=False)

with st.container(horizontal=True):
    for name, recs, key in (("train.jsonl", check.train, "td_dl_train"),
                            ("validation.jsonl", check.validation, "td_dl_valid")):
        st.download_button(f"{name} ({len(recs)})", dataset.to_jsonl(recs), name, "application/jsonl",
                           icon=":material/download:", key=key, disabled=not recs, on_click="ignore")
if check.left_out:
    st.caption(f"{check.left_out} approved example(s) with format errors are left out of the files.")

# ---- 8. generate drafts from indexed documents -------------------------------------------------------
st.subheader("Generate from documents")
docs = generate.list_documents(s.db_path)
if not docs:
    st.info("Index documents first (Documents page): drafts are written from their chunks.",
            icon=":material/description:")
else:
    labels = {(c, d): f"{d} ({n} chunks)" + (f" · {c}" if c != "default" else "") for c, d, n in docs}
    chosen = st.multiselect("Documents", list(labels), format_func=labels.get, key="td_gen_docs")
    g1, g2 = st.columns([3, 1])
    system = g1.text_area("System prompt of the examples", generate.DEFAULT_SYSTEM, key="td_gen_system")
    limit = g2.number_input("At most this many chunks", 1, 500, 10, key="td_gen_limit")
    fmt = st.text_input("Answer format", generate.DEFAULT_FORMAT, key="td_gen_format",
                        help="{answer}, {document} and {section} are filled in")
    with_passage = st.checkbox("Put the chunk in the question as passage [1] (grounding data)", key="td_gen_passage")
    if n_chunks := min(int(limit), sum(n for c, d, n in docs if (c, d) in chosen)):  # say how long, before
        per_chunk, why = generate.seconds_per_chunk(store, s.chat_model_name, s.active_provider == "local")
        st.info(generate.estimate_text(n_chunks, per_chunk, why), icon=":material/timer:")
    if S.pop("td_gen_running", False):  # the previous run was interrupted by the Stop button
        st.info(f"Generation stopped; {S.get('td_gen_count', 0)} draft(s) were saved.")
    if st.button("Generate drafts", type="primary", disabled=not chosen, key="td_gen_go"):
        if problem := generate.format_problem(fmt):
            st.error(inert(problem))
            st.stop()
        chunks = generate.list_chunks(s.db_path, chosen)[: int(limit)]
        chat = app_state.chat_model(s)
        st.button("Stop", key="td_gen_stop", icon=":material/stop:", help="Drafts already written are kept.")
        bar = st.progress(0.0, text=f"0 of {len(chunks)} chunks")
        S["td_gen_running"], S["td_gen_count"], fallback = True, 0, 0
        style = generate.Style(system, fmt, with_passage)
        for p in generate.generate(store, chunks, chat, style, model_name=s.chat_model_name):
            S["td_gen_count"] = p.done
            fallback += not p.used_model
            bar.progress(p.done / p.total, text=f"{p.done} of {p.total} chunks")
        S["td_gen_running"] = False
        flash(f"{S['td_gen_count']} draft(s) written; {fallback} used the extractive fallback because "
              "the model's output was unusable (see each example's notes).")
