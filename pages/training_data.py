"""Training data: a grid to build, review and validate fine-tuning examples; every edit is saved as it is made.

The grid's input DataFrame is kept stable in session state (rebuilt only when the filters change or after
a bulk action), and the editor's delta (edited / added / deleted rows) is written to SQLite at the top of
every rerun, so the editor keeps its place after an edit and a reload shows exactly what was typed.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

import app_state
from rag_ft.training import dataset, generate
from rag_ft.training.examples import SOURCES, SPLITS, STATUSES, ExampleError, ExampleStore
from rag_ft.training.tokens import TokenizerUnavailable

SAMPLE = Path(__file__).resolve().parent.parent / "sample_docs" / "sample_dataset.jsonl"
PROBLEM_FILTERS = ["All", "No problem", "Any problem", "Errors", "Warnings", "Stale"]
TEXT_COLS = ("system", "user", "assistant")
S = st.session_state

# Streamlit drops a page's widget state when the user visits another page: keep the filters in plain keys
KEPT = ("td_search", "td_status", "td_split", "td_source", "td_problem")
for _k in KEPT:
    if _k not in S and f"_kept_{_k}" in S:
        S[_k] = S[f"_kept_{_k}"]


def keep_filters() -> None:
    for k in KEPT:
        if k in S:
            S[f"_kept_{k}"] = S[k]

s = app_state.settings()
store = ExampleStore(s.db_path)
st.title("Training data")
st.caption("Examples of how answers should look, in OpenAI's fine-tuning chat format. Every edit is saved as you make it.")


def bump() -> None:
    """Rebuild the grid from the database on this rerun (after bulk changes, imports, detail edits)."""
    S["td_version"] = S.get("td_version", 0) + 1


def estimate_model() -> str:
    default = dataset.models()[0] if s.active_provider == "openai" else dataset.models()[-1]
    return S.get("td_model", default)


# ---- 1. save what the user typed into the grid on the previous interaction --------------------
def save_grid_delta() -> list[str]:
    """Write the editor's NEW changes to SQLite. The delta in session state is cumulative for the editor's
    life, so we remember what was already applied: re-applying it would undo a later bulk action."""
    key = S.get("td_grid_key")
    delta = S.get(key) if key else None
    ids = S.get("td_grid_ids", [])
    if not isinstance(delta, dict):
        return []
    applied = S.setdefault(f"{key}_applied", {"edited": {}, "added": {}, "deleted": set()})
    saved, errors = [], []
    for pos, change in (delta.get("edited_rows") or {}).items():
        pos = int(pos)
        before = applied["edited"].get(pos, {})
        new = {c: v for c, v in change.items() if c not in before or before[c] != v}
        if pos >= len(ids) or not new:
            continue
        try:
            saved += _apply_row(ids[pos], new)
        except ExampleError as exc:
            errors.append(f"#{ids[pos]}: {exc}")
        applied["edited"][pos] = dict(change)
    added = S.setdefault(f"{key}_added", {})
    for pos, row in enumerate(delta.get("added_rows") or []):
        if applied["added"].get(pos) == row:
            continue
        texts = {r: (row.get(r) or "") for r in TEXT_COLS}
        if pos not in added:
            if not any(texts.values()):
                continue  # an empty new row: wait until something is typed
            msgs = [{"role": r, "content": t} for r, t in texts.items() if t]
            added[pos] = store.add(msgs, status=row.get("status") or "draft", split=row.get("split") or "train",
                                   tags=row.get("tags") or "")
            saved.append(f"#{added[pos]} added")
        else:
            saved += _apply_row(added[pos], row)
        applied["added"][pos] = dict(row)
    new_gone = [int(p) for p in delta.get("deleted_rows") or [] if int(p) not in applied["deleted"]]
    gone = [ids[p] for p in new_gone if p < len(ids)]
    applied["deleted"].update(new_gone)
    if gone and store.delete(gone):
        saved.append(f"{len(gone)} deleted")
    for e in errors:
        st.error(e)
    return saved


def _apply_row(ex_id: int, change: dict) -> list[str]:
    ex = store.get(ex_id)
    if ex is None:
        return []
    out = []
    for col, value in change.items():
        value = "" if value is None else value
        if col in TEXT_COLS and value != getattr(ex, col):
            ex = store.set_text(ex_id, col, str(value))
            out.append(f"#{ex_id} {col}")
        elif col in ("status", "split") and value and value != getattr(ex, col):
            ex = store.update(ex_id, **{col: value})
            out.append(f"#{ex_id} {col} = {value}")
        elif col == "tags" and [t.strip() for t in str(value).split(",") if t.strip()] != ex.tags:
            ex = store.update(ex_id, tags=str(value))
            out.append(f"#{ex_id} tags")
    return out


saved = save_grid_delta()
if saved:
    st.toast("Saved: " + ", ".join(saved[:4]) + (" ..." if len(saved) > 4 else ""), icon=":material/check:")
    # the Problem column refreshes on Re-check; say now whether the edited example still has a format error
    for ex_id in sorted({int(x.split()[0][1:]) for x in saved if x.startswith("#")}):
        ex = store.get(ex_id)
        errs = dataset.format_errors(ex.record()) if ex else []
        if errs:
            st.toast(f"#{ex_id} still has a problem: {'; '.join(m for _, m in errs)}", icon=":material/warning:")

# ---- 2. counts, always visible -------------------------------------------------------------------
counts = store.counts()
cols = st.columns(6)
for col, (label, value) in zip(cols, [
        ("Draft", counts["status"]["draft"]), ("Approved", counts["status"]["approved"]),
        ("Rejected", counts["status"]["rejected"]), ("Train", counts["split"]["train"]),
        ("Validation", counts["split"]["validation"]), ("Deleted", counts["deleted"])], strict=True):
    col.metric(label, value)

# ---- 3. import ------------------------------------------------------------------------------------
def run_import(name: str, data: bytes, skip_existing: bool = False) -> None:
    result = dataset.import_file(name, data)
    records, lines = result.records, result.lines
    skipped = 0
    if skip_existing:
        have = {str(e.messages) for e in store.list()}
        keep = [(r, n) for r, n in zip(records, lines, strict=True) if str(r["messages"]) not in have]
        skipped = len(records) - len(keep)
        records, lines = [r for r, _ in keep], [n for _, n in keep]
    ids = store.add_many([{"messages": r["messages"], "source": "import", "source_file": name, "source_line": n}
                          for r, n in zip(records, lines, strict=True)]) if records else []
    S["td_last_import"] = {"name": name, "added": len(ids), "skipped": skipped, "problems": result.problems}
    bump()


def import_sample() -> None:
    if SAMPLE.exists():
        run_import(SAMPLE.name, SAMPLE.read_bytes(), skip_existing=True)
    else:
        S["td_flash_error"] = f"{SAMPLE} is missing."


def import_upload() -> None:
    up = S.get("td_upload")
    if up is not None:
        run_import(up.name, up.getvalue())


# callbacks run before the script, so the counts above already include what they changed
with st.container(horizontal=True):
    st.button("Import sample dataset", icon=":material/dataset:", key="td_sample", on_click=import_sample,
              help="64 examples in the style of the sample documents, imported as drafts")
    st.button("Re-check", icon=":material/refresh:", key="td_refresh", on_click=bump,
              help="Re-read and re-validate the table")
if S.get("td_flash_error"):
    st.error(S.pop("td_flash_error"))

with st.expander("Import a file (JSONL or CSV)", icon=":material/upload:"):
    st.caption("JSONL in OpenAI's chat format (one `{\"messages\": [...]}` per line), or a CSV with "
               "prompt/completion or question/answer columns (and an optional system column). Bad lines are "
               "listed by number; the good ones still import.")
    up = st.file_uploader("File", type=["jsonl", "json", "csv"], key="td_upload")
    st.button("Import file", key="td_import", disabled=up is None, on_click=import_upload)

last = S.get("td_last_import")
if last:
    msg = f"Imported {last['added']} example(s) from {last['name']}"
    if last["skipped"]:
        msg += f"; {last['skipped']} already there were skipped"
    (st.warning if last["problems"] else st.success)(msg + (f"; {len(last['problems'])} line(s) had problems:"
                                                            if last["problems"] else "."))
    if last["problems"]:
        st.code("\n".join(f"line {n}: {reason}" if n else reason for n, reason in last["problems"][:200]),
                language=None)

# ---- 4. filters and the grid ---------------------------------------------------------------------------
f1, f2, f3, f4, f5 = st.columns([3, 2, 2, 2, 2])
search = f1.text_input("Search all text", key="td_search", placeholder="words in any message, tag or note")
f_status = f2.multiselect("Status", STATUSES, key="td_status")
f_split = f3.multiselect("Split", SPLITS, key="td_split")
f_source = f4.multiselect("Source", SOURCES, key="td_source")
f_problem = f5.selectbox("Validation", PROBLEM_FILTERS, key="td_problem")
keep_filters()

model = estimate_model()
signature = (search, tuple(f_status), tuple(f_split), tuple(f_source), f_problem, model, S.get("td_version", 0))
if S.get("td_signature") != signature:
    examples = store.list(status=f_status or None, split=f_split or None, source=f_source or None, search=search)
    try:
        report = dataset.validate([e.record() for e in examples], model=model, min_examples=0)
    except TokenizerUnavailable as exc:
        st.warning(f"Token counts unavailable: {exc}")
        report = dataset.validate([e.record() for e in examples], model=model, min_examples=0, count=False)
    stale = store.stale_ids()
    rows = []
    for i, e in enumerate(examples):
        issues = report.for_example(i)
        levels = {x.level for x in issues}
        is_stale = e.id in stale
        keep = {"All": True, "No problem": not issues and not is_stale, "Any problem": bool(issues) or is_stale,
                "Errors": "error" in levels, "Warnings": "warning" in levels, "Stale": is_stale}[f_problem]
        if keep:
            problem = report.problem_text(i)
            if is_stale:
                problem = "; ".join(x for x in ("stale: its document chunk changed or was deleted", problem) if x)
            rows.append({"id": e.id, "status": e.status, "split": e.split, "system": e.system, "user": e.user,
                         "assistant": e.assistant, "problem": problem, "tokens": report.token_counts[i],
                         "turns": e.turns, "source": e.source_label, "tags": ", ".join(e.tags), "stale": is_stale})
    S["td_df"] = pd.DataFrame(rows, columns=["id", "status", "split", "system", "user", "assistant", "problem",
                                             "tokens", "turns", "source", "tags", "stale"])
    S["td_grid_ids"] = [r["id"] for r in rows]
    S["td_nonce"] = S.get("td_nonce", 0) + 1
    S["td_grid_key"] = f"td_grid_{S['td_nonce']}"  # a new df gets a new editor: old deltas never re-apply
    S["td_signature"] = signature

df: pd.DataFrame = S["td_df"]
ids: list[int] = S["td_grid_ids"]
st.caption(f"{len(ids)} example(s) shown. Click a cell to edit; changes save immediately. "
           "Multi-turn examples (turns > 1) show the first question and the last answer: edit them below.")
st.data_editor(
    df, key=S["td_grid_key"], hide_index=True, num_rows="dynamic", width="stretch", height=420,
    column_order=["id", "status", "split", "problem", "user", "assistant", "system", "tags", "tokens", "turns",
                  "source", "stale"],
    disabled=["id", "problem", "tokens", "turns", "source", "stale"],
    column_config={
        "id": st.column_config.NumberColumn("ID", width="small"),
        "status": st.column_config.SelectboxColumn("Status", options=list(STATUSES), required=True, width="small"),
        "split": st.column_config.SelectboxColumn("Split", options=list(SPLITS), required=True, width="small"),
        "system": st.column_config.TextColumn("System", width="small"),
        "user": st.column_config.TextColumn("User", width="medium"),
        "assistant": st.column_config.TextColumn("Assistant", width="large"),
        "problem": st.column_config.TextColumn("Problem", help="What OpenAI's rules say about this example",
                                               width="medium"),
        "tokens": st.column_config.NumberColumn("Tokens", help=f"Counted for {model}", width="small"),
        "turns": st.column_config.NumberColumn("Turns", width="small"),
        "source": st.column_config.TextColumn("Source", width="small"),
        "tags": st.column_config.TextColumn("Tags", help="comma-separated", width="small"),
        "stale": st.column_config.CheckboxColumn("Stale", width="small"),
    },
)

# ---- 5. bulk actions on the filtered rows ------------------------------------------------------------
live = [i for i in ids if (e := store.get(i)) is not None and e.deleted_at is None]
with st.container(horizontal=True):
    n = len(live)
    actions = [("Approve", {"status": "approved"}, ":material/check_circle:"),
               ("Reject", {"status": "rejected"}, ":material/cancel:"),
               ("Move to validation", {"split": "validation"}, ":material/call_split:"),
               ("Move to train", {"split": "train"}, ":material/model_training:")]
    for label, fields, icon in actions:
        if st.button(f"{label} {n} shown", icon=icon, key=f"td_bulk_{label}", disabled=not n):
            changed = store.set_many(live, **fields)
            S["td_flash"] = f"{label}: {changed} example(s) changed."
            bump()
            st.rerun()
    if st.button(f"Delete {n} shown", icon=":material/delete:", key="td_bulk_delete", disabled=not n):
        S["td_flash"] = f"Deleted {store.delete(live)} example(s). Restore them below if that was a mistake."
        bump()
        st.rerun()
    approved_train = [e.id for e in store.list(status="approved")]
    if st.button("Hold out 20% of approved for validation", key="td_holdout", disabled=len(approved_train) < 5):
        store.set_many(approved_train, split="train")
        held = dataset.validation_ids(approved_train, 0.2)
        store.set_many(held, split="validation")
        S["td_flash"] = f"{len(held)} approved example(s) now in validation, {len(approved_train) - len(held)} in train."
        bump()
        st.rerun()
if S.get("td_flash"):
    st.success(S.pop("td_flash"))

# ---- 6. detail editor (multi-turn, tags, notes, provenance) and restore -------------------------------
with st.expander("Edit one example in full (multi-turn, tags, notes)", icon=":material/edit_note:"):
    if not live:
        st.caption("No example shown.")
    else:
        labels = {i: f"#{i}" for i in live}
        for i in live:
            e = store.get(i)
            labels[i] = f"#{i} {e.user[:70]}"
        pick = st.selectbox("Example", live, format_func=labels.get, key="td_pick")
        ex = store.get(pick)
        st.caption(f"Source: {ex.source_label} · created {ex.created_at[:19]} · updated {ex.updated_at[:19]}"
                   + (f" · section: {ex.section}" if ex.section else ""))
        msgs = pd.DataFrame([{"role": m.get("role", ""), "content": m.get("content", "")} for m in ex.messages
                             if isinstance(m, dict)], columns=["role", "content"])
        edited = st.data_editor(msgs, key=f"td_detail_{pick}_{ex.updated_at}", num_rows="dynamic", width="stretch",
                                hide_index=True, column_config={
                                    "role": st.column_config.SelectboxColumn(
                                        "Role", options=["system", "user", "assistant"], required=True),
                                    "content": st.column_config.TextColumn("Content", width="large")})
        tags = st.text_input("Tags (comma-separated)", ", ".join(ex.tags), key=f"td_tags_{pick}")
        notes = st.text_area("Notes", ex.notes, key=f"td_notes_{pick}")
        if st.button("Save example", key="td_detail_save", type="primary"):
            new = [{"role": r["role"], "content": r["content"] or ""} for r in edited.to_dict("records")
                   if r.get("role")]
            problems = dataset.format_errors({"messages": new})
            store.update(pick, messages=new, tags=tags, notes=notes)
            S["td_flash"] = f"Saved #{pick}." + (f" Still to fix: {'; '.join(m for _, m in problems)}." if problems else "")
            bump()
            st.rerun()
    deleted = store.list(deleted_only=True)
    if deleted:
        st.divider()
        back = st.multiselect("Deleted examples", [e.id for e in deleted], key="td_restore_pick",
                              format_func=lambda i: f"#{i} {store.get(i).user[:70]}")
        if st.button(f"Restore {len(back) or 'all'}", key="td_restore", icon=":material/restore_from_trash:"):
            n = store.restore(back or [e.id for e in deleted])
            S["td_flash"] = f"Restored {n} example(s)."
            bump()
            st.rerun()

# ---- 7. check before training: validation, tokens, epochs, cost, time; export ------------------------
st.subheader("Check before training")
c1, c2 = st.columns([3, 1])
all_models = dataset.models()
c1.selectbox("Model to fine-tune", all_models, index=all_models.index(model), key="td_model",
             help=f"OpenAI prices as of {dataset.PRICES_AS_OF}; the local model trains on this machine's CPU.")
epochs_in = c2.number_input("Epochs (0 = OpenAI's default)", 0, 50, 0, key="td_epochs")
keep_filters()
train_ex = store.list(status="approved", split="train")
valid_ex = store.list(status="approved", split="validation")
train_recs = [e.record() for e in train_ex]


def show_checks() -> None:
    try:
        rep = dataset.validate(train_recs, model=model)
        est = dataset.estimate(train_recs, model, epochs=epochs_in or None)
    except TokenizerUnavailable as exc:  # no offline tokenizer: say so, keep the rest of the page
        st.error(str(exc))
        return
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Approved training examples", est.examples)
    m2.metric("Tokens per epoch", f"{est.tokens:,}")
    m3.metric("Epochs", est.epochs, help="OpenAI's default: 3, scaled so examples x epochs is between 100 and 25,000")
    if est.cost_usd is not None:
        m4.metric("Estimated cost", f"${est.cost_usd:,.2f}", help=f"{est.training_tokens:,} training tokens")
    elif est.local_seconds is not None:
        m4.metric("Estimated CPU time", f"{est.local_seconds / 60:.1f} min",
                  help=f"From a measured {dataset.LOCAL_SECONDS_PER_STEP} s per step (batch 4 x ~153 tokens, 2 cores)")
    else:
        m4.metric("Estimated cost", "n/a")
    for issue in rep.issues:
        where = f"#{train_ex[issue.index].id}: " if issue.index >= 0 else ""
        (st.error if issue.level == "error" else st.warning)(where + issue.message)
    if rep.ok and not rep.warnings:
        st.success(f"{est.examples} approved training examples pass OpenAI's format checks.")
    hist = dataset.histogram(est.token_counts)
    if hist:
        st.caption("Example length (tokens)")
        st.bar_chart(pd.DataFrame(hist, columns=["tokens", "examples"]).set_index("tokens"), height=200)


show_checks()

clean_train = [r for r in train_recs if not dataset.format_errors(r)]
clean_valid = [e.record() for e in valid_ex if not dataset.format_errors(e.record())]
with st.container(horizontal=True):
    st.download_button(f"train.jsonl ({len(clean_train)})", dataset.to_jsonl(clean_train), "train.jsonl",
                       "application/jsonl", icon=":material/download:", key="td_dl_train",
                       disabled=not clean_train, on_click="ignore")
    st.download_button(f"validation.jsonl ({len(clean_valid)})", dataset.to_jsonl(clean_valid), "validation.jsonl",
                       "application/jsonl", icon=":material/download:", key="td_dl_valid",
                       disabled=not clean_valid, on_click="ignore")
skipped = len(train_recs) - len(clean_train) + len(valid_ex) - len(clean_valid)
if skipped:
    st.caption(f"{skipped} approved example(s) with format errors are left out of the files.")

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
    if S.pop("td_gen_running", False):  # the previous run was interrupted by the Stop button
        st.info(f"Generation stopped; {S.get('td_gen_count', 0)} draft(s) were saved.")
    go = st.button("Generate drafts", type="primary", disabled=not chosen, key="td_gen_go")
    if go:
        try:
            style = generate.Style(system, fmt, with_passage)
            fmt.format(answer="", document="", section="")
        except (KeyError, IndexError, ValueError) as exc:
            st.error(f"The answer format has an unknown placeholder: {exc}. Use {{answer}}, {{document}}, {{section}}.")
            st.stop()
        chunks = generate.list_chunks(s.db_path, chosen)[: int(limit)]
        chat = app_state.chat_model(s)
        st.button("Stop", key="td_gen_stop", icon=":material/stop:")
        bar = st.progress(0.0, text=f"0 of {len(chunks)} chunks")
        S["td_gen_running"], S["td_gen_count"] = True, 0
        fallback = 0
        for p in generate.generate(store, chunks, chat, style, model_name=s.chat_model_name):
            S["td_gen_count"] = p.done
            fallback += not p.used_model
            bar.progress(p.done / p.total, text=f"{p.done} of {p.total} chunks")
        S["td_gen_running"] = False
        S["td_flash"] = (f"{S['td_gen_count']} draft(s) written; {fallback} used the extractive fallback because "
                         "the model's output was unusable (see each example's notes).")
        bump()
        st.rerun()
