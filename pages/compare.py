import pandas as pd
import streamlit as st

import app_state
from rag_ft import evaluation as ev
from rag_ft.evaluation.metrics import compile_style
from rag_ft.models.catalogue import available_models

s = app_state.settings()
store = app_state.eval_store(s)
choices = available_models(s)
by_label = {c.label: c for c in choices}

st.title("Compare")
st.caption("The same questions through base, RAG, fine-tuned and both: measured quality, speed and cost on your "
           "documents. Every metric is defined in the README.")


# ---------------------------------------------------------------- 1. evaluation set
def load_sample_set() -> None:
    try:
        st.session_state["eval_set"] = ev.import_sample_set(store)
        st.session_state["eval_flash"] = [("success", "Loaded the sample evaluation set.")]
    except ev.EvalError as exc:
        st.session_state["eval_flash"] = [("error", str(exc))]


st.subheader("1. Evaluation set")
sets = store.list_sets()
with st.container(border=True):
    for kind, message in st.session_state.pop("eval_flash", []):  # messages from the click before the rerun
        getattr(st, kind)(message)
    if not sets:
        st.info("No evaluation set yet. Start with the sample set (questions about the sample documents, "
                "with expected documents and pages), import your own, or derive one from your training data.")
    c1, c2 = st.columns([3, 1])
    if sets:
        ids = [x.id for x in sets]
        if st.session_state.get("eval_set") not in ids:
            st.session_state["eval_set"] = ids[-1]
        names = {x.id: f"{x.name} ({x.size} questions)" for x in sets}
        set_id = c1.selectbox("Evaluation set", ids, format_func=names.get, key="eval_set")
    else:
        set_id = None
    if not store.find_set(ev.SAMPLE_SET_NAME):
        c2.button("Load the sample evaluation set", on_click=load_sample_set, key="load_sample_set",
                  icon=":material/playlist_add:", type="primary" if not sets else "secondary")

    with st.expander("Add an evaluation set", icon=":material/add:"):
        t1, t2 = st.tabs(["Import a file", "From training data"])
        with t1:
            st.caption("JSONL, JSON or CSV with `question`, and optionally `answer`, `document`, `pages` "
                       "(3, [3, 4] or 3-5), `section`, `answerable` (true/false).")
            upload = st.file_uploader("Questions file", type=["jsonl", "json", "csv"], key="eval_upload")
            if upload is not None and st.button("Import", key="eval_import"):
                try:
                    parsed = ev.parse_questions(upload.getvalue(), upload.name)
                except ev.EvalError as exc:
                    st.error(str(exc))
                else:
                    flash = [("warning", p) for p in parsed.problems[:20]]
                    if parsed.questions:
                        st.session_state["eval_set"] = store.create_set(
                            upload.name.rsplit(".", 1)[0], parsed.questions, source=f"import: {upload.name}")
                        left = f" ({len(parsed.problems)} row(s) left out, listed above)" if parsed.problems else ""
                        flash.append(("success", f"Imported {len(parsed.questions)} questions from {upload.name}{left}."))
                    st.session_state["eval_flash"] = flash
                    st.rerun()
        with t2:
            kind = st.radio("Questions from", ["generated", "held_out"], horizontal=True, key="eval_from_kind",
                            format_func={"generated": "examples generated from documents (pages known)",
                                         "held_out": "approved examples in the validation split (held out)"}.get)
            if st.button("Create the set", key="eval_from_examples"):
                qs = ev.questions_from_examples(s.db_path, kind)
                if not qs:
                    st.warning("No such examples yet: generate or approve some on the Training data page.")
                else:
                    name = "From generated examples" if kind == "generated" else "Held-out examples"
                    st.session_state["eval_set"] = store.create_set(name, qs, source=f"training data: {kind}")
                    st.rerun()

    questions = store.questions(set_id) if set_id else []
    if set_id:
        with st.expander(f"Questions ({len(questions)})", icon=":material/list:"):
            st.dataframe(pd.DataFrame([{**ev.question_dict(q), "pages": ", ".join(map(str, q.pages))}
                                       for q in questions]), hide_index=True)
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
defaults = ev.default_configs(choices, s.retrieval_k, s.hybrid)
labels = list(by_label)
if not any(c.kind in ("tuned", "grounding") for c in choices):
    st.caption("No fine-tuned model yet: train one on the Fine-tuning page to compare it here.")
configs: list[ev.RunConfig] = []
with st.container(border=True):
    for i in range(ev.MAX_CONFIGS):
        d = defaults[i] if i < len(defaults) else ev.RunConfig(f"Config {i + 1}", labels[0] if labels else "")
        cols = st.columns([1, 1.6, 2.4, 1, 0.8, 1.2])
        on = cols[0].checkbox(f"Use #{i + 1}", value=i < len(defaults), key=f"cfg_on_{i}")
        name = cols[1].text_input("Name", d.label, key=f"cfg_name_{i}", disabled=not on,
                                  label_visibility="collapsed" if i else "visible")
        model = cols[2].selectbox("Model", labels, index=labels.index(d.model) if d.model in labels else 0,
                                  key=f"cfg_model_{i}", disabled=not on, label_visibility="collapsed" if i else "visible")
        rag = cols[3].toggle("RAG", value=d.rag, key=f"cfg_rag_{i}", disabled=not on)
        k = cols[4].number_input("k", 1, 20, d.k, key=f"cfg_k_{i}", disabled=not (on and rag),
                                 label_visibility="collapsed" if i else "visible")
        hybrid = cols[5].toggle("Hybrid", value=d.hybrid, key=f"cfg_hybrid_{i}", disabled=not (on and rag))
        if on and model:
            configs.append(ev.RunConfig(name.strip() or f"Config {i + 1}", model, rag, int(k), hybrid))

    o1, o2, o3, o4 = st.columns([3, 1, 1, 1.4])
    style = o1.text_input("Format check (regular expression the answers should match)", ev.DEFAULT_STYLE,
                          key="style_pattern", help="Style adherence = share of answers where this matches "
                          "(re.search, case-insensitive). Empty = no format check.")
    max_tokens = o2.number_input("Max answer tokens", 16, 1024, 96 if s.active_provider == "local" else 256,
                                 key="eval_max_tokens")
    limit = o3.number_input("Questions (0 = all)", 0, max(1, len(questions)), 0, key="eval_limit")
    collection = o4.selectbox("Collection", app_state.collections(s), key="eval_collection")
    judge = st.toggle("LLM judge: groundedness and relevance (1-5)", key="eval_judge", disabled=not s.has_api_key,
                      help="An OpenAI model grades each answer. It is a judgement, not a measurement. Needs a key.")

problems = ev.check_configs(configs)
try:
    compile_style(style)
except ValueError as exc:
    problems.append(str(exc))
uses_rag = any(c.rag for c in configs)
docs_ready = app_state.has_documents(s, collection) if uses_rag else True
if uses_rag and not docs_ready:
    st.warning(f"Collection `{collection}` has no indexed documents, so RAG configurations cannot retrieve.")
    if st.button("Index the sample documents", key="eval_index_samples", icon=":material/upload_file:"):
        from rag_ft.index.documents import load_sample_documents

        with st.status("Indexing the sample documents...") as status:
            bar = st.progress(0.0)
            load_sample_documents(s, app_state.embeddings(s), collection,
                                  progress=lambda f, msg: bar.progress(min(1.0, f), text=msg))
            status.update(label="Sample documents indexed", state="complete")
        st.rerun()
for p in problems:
    st.error(p)

n_questions = min(len(questions), limit or len(questions))


def make_evaluator() -> ev.Evaluator:
    retriever = app_state.retriever(s) if uses_rag else None
    judge_model = None
    if judge and s.has_api_key:
        from rag_ft.models.providers import get_chat_model

        judge_model = get_chat_model(s)
    return ev.Evaluator(
        store, app_state.embeddings(s),
        lambda cfg, n: app_state.eval_chat_model(s, by_label[cfg.model], n),
        retriever=retriever, judge_model=judge_model,
        backends={c.label: c.backend for c in choices},
    )


def execute(run_id: int, select: bool = True) -> None:
    """Run in the script: each answer is stored as it comes, so a stop (or a closed tab) loses nothing."""
    if select:  # a new run becomes the one shown below (Continue runs the one already shown)
        st.session_state["eval_run"] = run_id
    st.session_state["eval_running"] = run_id
    bar = st.progress(0.0, text="Starting...")
    st.button("Stop the run", key="stop_eval", icon=":material/stop:")  # any click reruns the page: that stops the run

    def progress(p: ev.Progress) -> None:
        bar.progress(p.done / max(1, p.total), text=f"{p.done}/{p.total} · {p.message[:120]}")

    info = make_evaluator().run(run_id, progress=progress)
    st.session_state.pop("eval_running", None)
    st.toast(f"Run finished: {info.answered} answers.", icon=":material/check:")


# a click on Stop (or any widget) during a run ends up here on the next rerun
running = st.session_state.pop("eval_running", None)
if running is not None:
    info = store.get_run(running)
    if info.status in ("running", "new"):
        store.set_status(running, "stopped")
        st.info(f"Stopped after {info.answered} answers. Continue the run below whenever you like.")

start = st.button(
    f"Run {len(configs)} configuration(s) on {n_questions} question(s)", type="primary", key="run_eval",
    icon=":material/play_arrow:", disabled=bool(problems) or not questions or not docs_ready)
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
run_names = {r.id: f"{r.name} · {r.status} · {r.answered} answers" for r in runs}
r1, r2, r3 = st.columns([4, 1.3, 1.3])
run_id = r1.selectbox("Run", run_ids, format_func=run_names.get, key="eval_run")
info = store.get_run(run_id)
total = len(store.questions(info.set_id)[: info.options.limit or None]) * len(info.configs)
if info.answered < total and r2.button("Continue", key="continue_eval", icon=":material/resume:"):
    execute(run_id, select=False)
    info = store.get_run(run_id)
if r3.button("Delete run", key="delete_run", icon=":material/delete:"):
    store.delete_run(run_id)
    st.session_state.pop("eval_run", None)
    st.rerun()

records = store.results(run_id)
st.caption(f"{info.answered}/{total} answers · status {info.status} · "
           + " | ".join(f"**{c.label}**: {c.describe()}" for c in info.configs))
if info.error:
    st.caption(f"Last error: {info.error}")
if not records:
    st.stop()

rows = ev.summary_table(info, records)
with st.container(border=True):
    st.markdown("**What the numbers say**")
    st.markdown("\n".join(f"- {line}" for line in ev.plain_summary(info, rows)))
    if info.options.judge:
        st.caption("Groundedness and relevance are an LLM's judgement, not a measurement.")

present = [(key, label, kind) for key, label, kind, _ in ev.METRICS if any(r.get(key) is not None for r in rows)]
table = pd.DataFrame([{"Configuration": r["configuration"], "Setup": r["setup"], "Answers": r["answers"],
                       "Errors": r["errors"],
                       **{label: None if r.get(key) is None else round(r[key], 6 if kind == "dollars" else 3)
                          for key, label, kind in present}} for r in rows])
st.dataframe(table, hide_index=True, key="eval_summary_table")

def metric_chart(kind: str, title: str) -> None:
    data = [{"metric": label, "configuration": r["configuration"], "value": r.get(key)}
            for key, label, k in present if k == kind for r in rows if r.get(key) is not None]
    if data:
        st.markdown(title)
        st.bar_chart(pd.DataFrame(data), x="metric", y="value", color="configuration", stack=False, horizontal=True,
                     sort=False, x_label="", y_label="", height=60 + 28 * len(rows) * len({x["metric"] for x in data}))


metric_chart("fraction", "**Quality (0-1, higher is better except 'Not covered' on answerable)**")
metric_chart("seconds", "**Time per answer (seconds, lower is better)**")

# one question, every configuration side by side
st.markdown("**One question, side by side**")
run_questions = [q for q in store.questions(info.set_id) if any(r.question_id == q.id for r in records)]
q_ids = [q.id for q in run_questions]
q_by_id = {q.id: q for q in run_questions}
qid = st.selectbox("Question", q_ids, format_func=lambda i: q_by_id[i].question, key="eval_question")
q = q_by_id[qid]
expected = f"{q.document} {'p. ' + ', '.join(map(str, q.pages)) if q.pages else ''}".strip()
st.caption(f"Reference: {q.reference or '(none)'}" + (f" · expected: {expected}" if expected else "")
           + ("" if q.answerable else " · **not answerable from the documents**"))
cols = st.columns(len(info.configs))
for i, cfg in enumerate(info.configs):
    rec = next((r for r in records if r.question_id == qid and r.config_index == i), None)
    with cols[i], st.container(border=True):
        st.markdown(f"**{cfg.label}**")
        st.caption(cfg.describe())
        if rec is None:
            st.caption("Not answered yet.")
            continue
        if rec.error:
            st.error(rec.error)
        st.markdown(rec.answer or "_(empty)_")
        for c in rec.citations:
            pages = ", ".join(map(str, c["pages"]))
            flag = "" if c["supported"] else " · :orange[unsupported]"
            st.caption(f"[{c['marker']}] {c['document']}{' p. ' + pages if pages else ''}{flag}")
        mx = rec.metrics
        facts = [f"first token {rec.ttft_s:.2f} s", f"total {rec.total_s:.2f} s",
                 f"{rec.input_tokens}+{rec.output_tokens} tokens"]
        if mx.get("page_rank") is not None or mx.get("doc_rank") is not None:
            facts.append(f"expected page at rank {mx.get('page_rank') or '-'}, document at {mx.get('doc_rank') or '-'}")
        if mx.get("f1") is not None:
            facts.append(f"F1 {mx['f1']:.2f}")
        if mx.get("similarity") is not None:
            facts.append(f"similarity {mx['similarity']:.2f}")
        if mx.get("style") is not None:
            facts.append("follows format" if mx["style"] else "format not followed")
        if mx.get("judge_groundedness") is not None:
            facts.append(f"LLM judgement: grounded {mx['judge_groundedness']}/5, relevant {mx['judge_relevance']}/5")
        st.caption(" · ".join(facts))

flat = ev.results_rows(info, store.questions(info.set_id), records)
with st.expander("Every answer", icon=":material/table:"):
    st.dataframe(pd.DataFrame(flat), hide_index=True)
st.download_button("Export results as CSV", ev.rows_to_csv(flat), f"compare_run_{run_id}.csv", "text/csv",
                   key="export_results", on_click="ignore", icon=":material/download:")
