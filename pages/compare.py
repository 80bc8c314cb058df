"""Compare: widgets only (decisions: rag_ft.evaluation). Text from documents, models, files or users is made
``inert`` before anything that renders Markdown (an image in it would be fetched); selectboxes and tables show
plain text."""

import pandas as pd
import streamlit as st

import app_state
from rag_ft import evaluation as ev
from rag_ft.evaluation import configs as cf
from rag_ft.evaluation import report
from rag_ft.evaluation import workflow as wf
from rag_ft.evaluation.estimate import estimate_run, measured_answer_seconds
from rag_ft.models.catalogue import available_models
from rag_ft.models.providers import get_chat_model
from rag_ft.untrusted import inert, inert_line

s = app_state.settings()
store = app_state.eval_store(s)
choices = available_models(s)
by_label = {c.label: c for c in choices}
backends = {c.label: c.backend for c in choices}

st.title("Compare")
st.caption("The same questions through base, RAG, fine-tuned and both: measured quality, speed and cost on your "
           "documents. Every metric is defined in the README.")


def flash(set_id: int | None, messages: list[wf.Message]) -> None:  # shown after the rerun; selects a new set
    if set_id is not None:
        st.session_state["eval_set"] = set_id
    st.session_state["eval_flash"] = [(kind, inert(text)) for kind, text in messages]


# ---------------------------------------------------------------- 1. evaluation set
st.subheader("1. Evaluation set")
sets = store.list_sets()
set_id = None
with st.container(border=True):
    for kind, message in st.session_state.pop("eval_flash", []):  # inert already (see flash)
        getattr(st, kind)(message)
    if not sets:
        st.info("No evaluation set yet. Start with the sample set (questions about the sample documents, "
                "with expected documents and pages), import your own, or derive one from your training data.")
    c1, c2 = st.columns([3, 1])
    if sets:
        ids = [x.id for x in sets]
        if st.session_state.get("eval_set") not in ids:
            st.session_state["eval_set"] = ids[-1]
        set_id = c1.selectbox("Evaluation set", ids, format_func={x.id: f"{x.name} ({x.size} questions)"
                                                                  for x in sets}.get, key="eval_set")
    if not store.find_set(ev.SAMPLE_SET_NAME):
        c2.button("Load the sample evaluation set", on_click=lambda: flash(*wf.sample_set(store)), key="load_sample_set",
                  icon=":material/playlist_add:", type="primary" if not sets else "secondary")

    with st.expander("Add an evaluation set", icon=":material/add:"):
        t1, t2 = st.tabs(["Import a file", "From training data"])
        with t1:
            st.caption("JSONL, JSON or CSV with `question`, and optionally `answer`, `document`, `pages` "
                       "(3, [3, 4] or 3-5), `section`, `answerable` (true/false).")
            upload = st.file_uploader("Questions file", type=["jsonl", "json", "csv"], key="eval_upload")
            if upload is not None and st.button("Import", key="eval_import"):
                flash(*wf.import_file(store, upload.getvalue(), upload.name))
                st.rerun()
        with t2:
            kind = st.radio("Questions from", ["generated", "held_out"], horizontal=True, key="eval_from_kind",
                            format_func={"generated": "examples generated from documents (pages known)",
                                         "held_out": "approved examples in the validation split (held out)"}.get)
            if st.button("Create the set", key="eval_from_examples"):
                new_set = wf.set_from_examples(store, s.db_path, kind)
                if new_set is None:
                    st.warning("No such examples yet: generate or approve some on the Training data page.")
                else:
                    flash(new_set, [])
                    st.rerun()

    questions = store.questions(set_id) if set_id else []
    if set_id:
        with st.expander(f"Questions ({len(questions)})", icon=":material/list:"):
            st.dataframe(pd.DataFrame(wf.question_rows(questions)), hide_index=True)
            d1, d2, d3 = st.columns(3)
            d1.download_button("Export JSONL", ev.export_jsonl(questions), "eval_set.jsonl", "application/jsonl",
                               key="export_set_jsonl", on_click="ignore", icon=":material/download:")
            d2.download_button("Export CSV", ev.export_csv(questions), "eval_set.csv", "text/csv",
                               key="export_set_csv", on_click="ignore", icon=":material/download:")
            if d3.button("Delete this set", key="delete_set", icon=":material/delete:"):
                store.delete_set(set_id)
                st.session_state.pop("eval_set", None)
                st.rerun()

# ---------------------------------------------------------------- 2. configurations
st.subheader("2. Configurations")
labels = list(by_label)
if not any(c.is_tuned for c in choices):
    st.caption("No fine-tuned model yet: train one on the Fine-tuning page to compare it here.")
configs: list[ev.RunConfig] = []
with st.container(border=True):
    for i, (ticked, d) in enumerate(cf.slot_defaults(ev.default_configs(choices, s.retrieval_k, s.hybrid), labels)):
        cols = st.columns([1, 1.6, 2.4, 1, 0.8, 1.2])
        shown = "collapsed" if i else "visible"  # column titles on the first row only
        on = cols[0].checkbox(f"Use #{i + 1}", value=ticked, key=f"cfg_on_{i}")
        name = cols[1].text_input("Name", d.label, key=f"cfg_name_{i}", disabled=not on, label_visibility=shown)
        model = cols[2].selectbox("Model", labels, index=labels.index(d.model) if d.model in labels else 0,
                                  key=f"cfg_model_{i}", disabled=not on, label_visibility=shown)
        rag = cols[3].toggle("RAG", value=d.rag, key=f"cfg_rag_{i}", disabled=not on)
        k = cols[4].number_input("k", 1, 20, d.k, key=f"cfg_k_{i}", disabled=not (on and rag), label_visibility=shown)
        hybrid = cols[5].toggle("Hybrid", value=d.hybrid, key=f"cfg_hybrid_{i}", disabled=not (on and rag))
        configs += [c for c in [cf.config_from_form(i, on, name, model, rag, k, hybrid)] if c]

    o1, o2, o3, o4 = st.columns([3, 1, 1, 1.4])
    style = o1.text_input("Format check (regular expression the answers should match)", ev.DEFAULT_STYLE,
                          key="style_pattern", help="Style adherence = share of answers where this matches "
                          "(re.search, case-insensitive). Empty = no format check.")
    max_tokens = o2.number_input("Max answer tokens", 16, 1024, 96 if s.active_provider == "local" else 256,
                                 key="eval_max_tokens")
    limit = o3.number_input("Questions (0 = all)", 0, max(1, len(questions)), cf.default_limit(len(questions)),
                            key="eval_limit", help="A first run on a few questions takes minutes; 0 = the whole set.")
    collection = o4.selectbox("Collection", app_state.collections(s), key="eval_collection")
    judge = st.toggle("LLM judge: groundedness and relevance (1-5)", key="eval_judge", disabled=not s.has_api_key,
                      help="An OpenAI model grades each answer. It is a judgement, not a measurement. Needs a key.")
    st.caption(inert(wf.chat_default_line(configs, choices)))

problems = wf.form_problems(configs, style)
uses_rag = any(c.rag for c in configs)
docs_ready = app_state.has_documents(s, collection) if uses_rag else True
if not docs_ready:
    st.warning(f"Collection {inert_line(collection)} has no indexed documents, so RAG configurations cannot retrieve.")
    if st.button("Index the sample documents", key="eval_index_samples", icon=":material/upload_file:"):
        from rag_ft.index.documents import load_sample_documents

        with st.status("Indexing the sample documents...") as status:
            bar = st.progress(0.0)
            load_sample_documents(s, app_state.embeddings(s), collection,
                                  progress=lambda f, msg: bar.progress(min(1.0, f), text=inert_line(msg)))
            status.update(label="Sample documents indexed", state="complete")
        st.rerun()
for p in problems:
    st.error(inert(p))  # they quote the user's names and regular expression
n_questions = min(len(questions), limit or len(questions))


def execute(run_id: int, select: bool = True) -> None:
    """Run in the script: each answer is stored as it comes, so a stop (or a closed tab) loses nothing."""
    if select:  # a new run becomes the one shown below (Continue runs the one already shown)
        st.session_state["eval_run"] = run_id
    st.session_state["eval_running"] = run_id
    bar = st.progress(0.0, text="Starting...")
    st.button("Stop the run", key="stop_eval", icon=":material/stop:")  # any click reruns the page: that stops the run
    evaluator = ev.Evaluator(store, app_state.embeddings(s), lambda c, n: app_state.chat_model(s, by_label[c.model], n),
                             retriever=app_state.retriever(s) if uses_rag else None, backends=backends,
                             judge_model=get_chat_model(s) if judge and s.has_api_key else None)
    info = evaluator.run(run_id, progress=lambda p: bar.progress(
        p.done / max(1, p.total), text=f"{p.done}/{p.total} · {inert_line(p.message, 120)}"))
    st.session_state.pop("eval_running", None)
    st.toast(f"Run finished: {info.answered} answers.", icon=":material/check:")


# a click on Stop (or any widget) during a run ends up here on the next rerun
running = st.session_state.pop("eval_running", None)
if running is not None and (stopped := wf.mark_stopped(store, running)):
    st.info(stopped)

b1, b2 = st.columns([2, 3], vertical_alignment="center")
start = b1.button(
    f"Run {len(configs)} configuration(s) on {n_questions} question(s)", type="primary", key="run_eval",
    icon=":material/play_arrow:", disabled=bool(problems) or not questions or not docs_ready)
b2.caption(wf.estimate_caption(estimate_run(configs, n_questions, measured_answer_seconds(store), backends,
                                            bool(judge))))
if start and set_id:
    opts = ev.RunOptions(collection=collection, style_pattern=style, max_tokens=int(max_tokens),
                         judge=bool(judge), limit=int(limit) or None)
    execute(store.create_run(set_id, configs, opts))

# ---------------------------------------------------------------- 3. results
st.subheader("3. Results")
runs = store.list_runs(set_id) if set_id else []
if not runs:
    st.caption("No runs for this set yet.")
    st.stop()

run_ids = [r.id for r in runs]
if st.session_state.get("eval_run") not in run_ids:
    st.session_state["eval_run"] = run_ids[0]
r1, r2, r3 = st.columns([4, 1.3, 1.3])
run_id = r1.selectbox("Run", run_ids, key="eval_run",
                      format_func={r.id: f"{r.name} · {r.status} · {r.answered} answers" for r in runs}.get)
info = store.get_run(run_id)
set_questions = store.questions(info.set_id)
total = report.expected_answers(info, len(set_questions))
if info.answered < total and r2.button("Continue", key="continue_eval", icon=":material/resume:"):
    execute(run_id, select=False)
    info = store.get_run(run_id)
if r3.button("Delete run", key="delete_run", icon=":material/delete:"):
    store.delete_run(run_id)
    st.session_state.pop("eval_run", None)
    st.rerun()

records = store.results(run_id)
st.caption(f"{info.answered}/{total} answers · status {info.status} · "
           + " | ".join(f"**{inert_line(c.label)}**: {inert_line(c.describe())}" for c in info.configs))
if info.error:
    st.caption(f"Last error: {inert_line(info.error, 300)}")
if not records:
    st.stop()

rows = ev.summary_table(info, records)
with st.container(border=True):
    st.markdown("**What the numbers say**")
    st.markdown("\n".join(f"- {inert(line)}" for line in ev.plain_summary(info, rows)))
    if info.options.judge:
        st.caption("Groundedness and relevance are an LLM's judgement, not a measurement.")
st.dataframe(pd.DataFrame(report.table_rows(rows)), hide_index=True, key="eval_summary_table")
for kind, title in (("fraction", "**Quality (0-1, higher is better except 'Not covered' on answerable)**"),
                    ("seconds", "**Time per answer (seconds, lower is better)**")):
    if data := report.chart_rows(rows, kind):
        st.markdown(title)
        st.bar_chart(pd.DataFrame(data), x="metric", y="value", color="configuration", stack=False, horizontal=True,
                     sort=False, x_label="", y_label="", height=60 + 28 * len(rows) * len({x["metric"] for x in data}))

# one question, every configuration side by side
st.markdown("**One question, side by side**")
q_by_id = {q.id: q for q in wf.answered_questions(set_questions, records)}
qid = st.selectbox("Question", list(q_by_id), format_func=lambda i: q_by_id[i].question, key="eval_question")
q, expected = q_by_id[qid], wf.expected_where(q_by_id[qid])
st.caption(f"Reference: {inert(q.reference) or '(none)'}" + (f" · expected: {inert(expected)}" if expected else "")
           + ("" if q.answerable else " · **not answerable from the documents**"))
for i, (cfg, col) in enumerate(zip(info.configs, st.columns(len(info.configs)), strict=True)):
    with col, st.container(border=True):
        st.markdown(f"**{inert_line(cfg.label)}**")
        st.caption(inert_line(cfg.describe()))
        if (rec := wf.answer_of(records, qid, i)) is None:
            st.caption("Not answered yet.")
            continue
        if rec.error:
            st.error(inert(rec.error))
        # the model's words as written: inert (an image in an answer is never fetched), line breaks kept
        st.markdown(inert(rec.answer).replace("\n", "  \n") if rec.answer.strip() else "_(empty)_")
        for c in rec.citations:
            st.caption(inert_line(wf.citation_line(c)) + ("" if c["supported"] else " · :orange[unsupported]"))
        st.caption(" · ".join(report.answer_facts(rec)))

flat = ev.results_rows(info, set_questions, records)
with st.expander("Every answer", icon=":material/table:"):
    st.dataframe(pd.DataFrame(flat), hide_index=True)
st.download_button("Export results as CSV", ev.rows_to_csv(flat), f"compare_run_{run_id}.csv", "text/csv",
                   key="export_results", on_click="ignore", icon=":material/download:")
