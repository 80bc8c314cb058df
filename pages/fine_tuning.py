"""Fine-tuning: start a job on any backend (local LoRA, Together AI, Fireworks AI, OpenAI) on approved / uploaded
examples, and watch jobs live. The form is built from the backend's ``available_parameters()``: this page never
branches on a backend's name.

Job names, statuses, model ids and error messages come from files and servers: shown inert (``rag_ft.untrusted``).
"""

import time
from pathlib import Path

import pandas as pd
import streamlit as st

import app_state
from rag_ft.training import export, launch, serving
from rag_ft.training.backends import registry
from rag_ft.training.backends.base import LaunchRefused, Parameter, Request
from rag_ft.training.estimates import overfitting
from rag_ft.training.jobs import Job, JobStore, iso, parse_jsonl
from rag_ft.untrusted import inert, redact

SAMPLE = Path(__file__).resolve().parent.parent / "sample_docs" / "sample_dataset.jsonl"
BADGES = {"validating_files": ":blue-badge[validating files]", "queued": ":gray-badge[queued]",
          "running": ":orange-badge[running]", "succeeded": ":green-badge[succeeded]",
          "failed": ":red-badge[failed]", "cancelled": ":gray-badge[cancelled]"}
ICONS = {"validating_files": "🔎", "queued": "⏳", "running": "🟠", "succeeded": "🟢", "failed": "🔴", "cancelled": "⚪"}

s = app_state.settings()
if st.session_state.pop("_go_chat", False):  # switch pages from a full run, never from the live fragment's rerun
    st.switch_page("pages/chat.py")
store = JobStore(s.db_path)
offered = {b.name: b for b in registry.offered(s)}
st.title("Fine-tuning")
st.caption("Teach a model your style: a LoRA adapter trained on this computer (always available, offline), "
           "or a hosted LoRA job on Together AI or Fireworks AI.")


def badge(status: str) -> str:
    return BADGES.get(status, f":violet-badge[{inert(status)}]")  # unknown statuses are shown as they are


with st.expander("New fine-tuning job", expanded=not store.list(), icon=":material/add:"):
    c1, c2 = st.columns(2)
    name = c1.radio("Backend", list(offered), key="ft_backend", horizontal=True, format_func=lambda n: offered[n].label)
    backend = offered[name]
    base = c2.selectbox("Base model", backend.base_models(), key=f"ft_base_{name}")
    st.caption(backend.note)
    for retired in registry.retired(s):
        st.caption(retired)
    unavailable = backend.available()
    if unavailable:
        st.warning(unavailable, icon=":material/key:")
    sources = ["approved", "upload"] + (["sample"] if SAMPLE.exists() else [])
    source = st.radio("Examples", sources, key="ft_source", horizontal=True, format_func={
        "approved": "Approved examples (Training data page)", "upload": "Upload JSONL",
        "sample": "Sample dataset (Lumen Notes style)"}.get)
    train: list[dict] | bytes = []
    valid: list[dict] | bytes | None = None
    problems: list[str] = []
    if source == "approved":
        train, valid = launch.approved_records(s.db_path)
        st.caption(f"{len(train)} approved training and {len(valid or [])} approved validation examples.")
        if not train:
            problems.append("No approved training examples yet: approve some on the Training data page, "
                            "or upload a JSONL file.")
    elif source == "upload":
        u1, u2 = st.columns(2)
        up_train = u1.file_uploader("Training JSONL", type=["jsonl"], key="ft_train_file")
        up_valid = u2.file_uploader("Validation JSONL (optional)", type=["jsonl"], key="ft_valid_file")
        if up_train is None:
            problems.append("Upload a training JSONL file.")
        else:
            train, probs = parse_jsonl(up_train.getvalue(), up_train.name)
            problems += probs
            if up_valid is not None:
                valid, probs = parse_jsonl(up_valid.getvalue(), up_valid.name)
                problems += probs
    else:
        records, problems = parse_jsonl(SAMPLE.read_bytes(), SAMPLE.name)
        train, valid = launch.sample_split(records)
        st.caption(f"{len(train)} training and {len(valid)} validation examples from `{SAMPLE.name}`.")

    def widget(col, p: Parameter) -> object:  # one widget per parameter type
        if p.type == "int":
            return col.number_input(p.label, int(p.min or 0), int(p.max or 2**31 - 1), int(p.default), key=p.widget_key,
                                    help=p.help or None)
        if p.type == "float":
            return col.number_input(p.label, float(p.min or 0.0), float(p.max or 1.0), float(p.default),
                                    step=float(p.default) / 10, format="%.0e", key=p.widget_key, help=p.help or None)
        if p.type == "choice":
            return col.selectbox(p.label, p.choices, index=p.choices.index(p.default), key=p.widget_key,
                                 help=p.help or None)
        if p.type == "bool":
            return col.toggle(p.label, bool(p.default), key=p.widget_key, help=p.help or None)
        return col.text_input(p.label, str(p.default), key=p.widget_key, help=p.help or None)

    params = backend.available_parameters()
    hp: dict = {}
    for i, p in enumerate(params):
        if i % 4 == 0:
            cols = st.columns(4)
        hp[p.name] = widget(cols[i % 4], p)
    suffix = st.text_input("Suffix", "style", key="ft_suffix", max_chars=40, help="Added to the new model's name.")
    request = Request(base, train, valid or None, hp, suffix)
    if train:
        problems += backend.validate(request)
    try:
        hp = backend.hyperparameters(request)
    except ValueError:
        pass  # the problem is listed above
    for p in problems[:8]:
        st.error(inert(redact(p)), icon=":material/error:")
    records = train if isinstance(train, list) else []
    estimate_text = ""
    if records:
        estimate_text = launch.estimate_for(store, records, name, base, hp)
        st.info(f"Estimate: {inert(estimate_text)}", icon=":material/timer:")

    if st.button("Review and launch", key="ft_review", type="primary",
                 disabled=bool(problems) or not records or bool(unavailable)):
        st.session_state["ft_pending"] = {"backend": name, "base": base, "train": train, "valid": valid or None,
                                          "hp": hp, "suffix": suffix, "estimate": estimate_text}
        st.session_state["ft_show_confirm"] = True


def _close_confirm() -> None:
    st.session_state["ft_show_confirm"] = False


@st.dialog("Launch fine-tuning job", on_dismiss=_close_confirm)
def confirm_launch() -> None:
    p = st.session_state["ft_pending"]
    n_train = len(p["train"]) if isinstance(p["train"], list) else "?"
    st.markdown(inert(f"{p['backend']} · {p['base']} · {n_train} training / {len(p['valid'] or [])} validation "
                      f"examples\n\n{', '.join(f'{k}={v}' for k, v in p['hp'].items())}, suffix {p['suffix']}"))
    if p["estimate"]:
        st.caption(f"Estimate: {inert(p['estimate'])}")
    a, b = st.columns(2)
    if a.button("Launch", key="ft_confirm", type="primary"):
        try:
            job = registry.get(p["backend"], s).start_checked(
                store, Request(p["base"], p["train"], p["valid"], p["hp"], p["suffix"]))
        except LaunchRefused as exc:
            st.session_state["ft_launch_error"] = redact(exc)
        else:
            st.session_state["ft_selected_job"] = job.id
        st.session_state["ft_show_confirm"] = False
        st.rerun()
    if b.button("Cancel", key="ft_confirm_cancel"):
        _close_confirm()
        st.rerun()


if st.session_state.get("ft_show_confirm") and st.session_state.get("ft_pending"):
    confirm_launch()
if st.session_state.get("ft_launch_error"):
    st.error(inert(st.session_state.pop("ft_launch_error")), icon=":material/memory:")


# ---------------------------------------------------------------- jobs, live
def show_job(job: Job) -> None:
    head = st.columns([3, 2])
    head[0].markdown(f"#### {inert(job.id)} {badge(job.status)}")
    for line in launch.job_summary(job):
        head[0].caption(inert(line))
    if job.total_steps:
        eta = ""
        if job.status == "running" and job.estimated_finish:
            eta = f" · about {max(0, job.estimated_finish - time.time()):.0f} s left"
        head[1].progress(min(1.0, job.step / job.total_steps), text=f"step {job.step}/{job.total_steps}{eta}")
    job_backend = registry.for_job(s, job)
    hint = job_backend.explain(job) if job_backend else None
    if job.error:
        st.error(inert(redact(f"{job.error.message}" + (f" (about: {job.error.param})" if job.error.param else "")
                              + f" · code {job.error.code}")), icon=":material/error:")
    if hint:
        (st.info if job.error else st.warning)(inert(redact(hint)), icon=":material/lightbulb:")
    if job.status == "succeeded" and job.result_model:
        st.success(f"Model ready: {inert(job.result_model)}", icon=":material/check_circle:")
        label = launch.chat_label(s, job)
        if st.button("Chat with this model", key="ft_chat", icon=":material/chat:", disabled=label is None,
                     help=None if label else "The Chat page cannot reach this model with the current settings "
                     "(provider, or the service's key)."):
            st.session_state["chat_model"] = label
            st.session_state["_go_chat"] = True
            st.rerun(scope="app")
    if job.status == "succeeded" and job.backend == "local" and job.adapter_dir:  # serve it elsewhere
        slug = export.model_slug(job.result_model or job.id)
        st.download_button("Export for vLLM / Ollama / llama.cpp (zip)", lambda: export.export_zip(
            store, job.id, include_base=False), f"{slug}.zip", "application/zip", key="ft_export",
            icon=":material/download:", on_click="ignore", help=export.PAGE_HELP)
        st.code(serving.endpoint_snippet(slug, "ollama"), language="toml")
    if not job.is_terminal and st.button("Cancel job", key="ft_cancel", icon=":material/stop_circle:"):
        if job_backend is not None:
            job_backend.cancel(store, job.id)
        st.toast("Cancellation requested.")

    metrics = store.metrics(job.id)
    if metrics:
        df = pd.DataFrame([{"step": m.step, "training loss": m.train_loss, "validation loss": m.valid_loss}
                           for m in metrics]).set_index("step")
        df = df.dropna(axis=1, how="all")
        st.line_chart(df, x_label="step", y_label="loss")
        if hint := overfitting(metrics):
            st.warning(hint.message, icon=":material/trending_up:")
        st.caption(launch.last_step_text(metrics[-1]))
    elif not job.is_terminal:
        st.caption("The loss chart appears with the first training step.")
    t1, t2 = st.tabs(["Events", "Checkpoints"])
    events = store.events(job.id)
    t1.dataframe(pd.DataFrame([{"time": iso(e.created_at), "level": e.level, "message": e.message}
                               for e in reversed(events)]), hide_index=True, width="stretch", key="ft_events")
    cks = store.checkpoints(job.id)
    if cks:
        t2.dataframe(pd.DataFrame([{"step": c.step, "epoch": c.epoch, "checkpoint": c.location, "train loss":
                                    c.metrics.get("train_loss"), "validation loss": c.metrics.get("valid_loss")}
                                   for c in cks]), hide_index=True, width="stretch")
    else:
        t2.caption("No checkpoints yet (one per epoch).")


# refresh every 2 s while a job is live; a finished list needs no timer (and keeps the page idle)
_live = any(not j.is_terminal for j in store.list())


@st.fragment(run_every="2s" if _live else None)
def jobs_section() -> None:
    registry.refresh_all(store, s)
    jobs = store.list()
    st.subheader("Jobs")
    if not jobs:
        st.info("No fine-tuning jobs yet.", icon=":material/model_training:")
        return
    rows = [{"status": f"{ICONS.get(j.status, '❔')} {j.status}", "job": j.id, "backend": j.backend,
             "base model": j.base_model, "progress": f"{j.step}/{j.total_steps}" if j.total_steps else "",
             "model": j.result_model or "", "created": iso(j.created_at)} for j in jobs]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="ft_jobs_table")
    ids = [j.id for j in jobs]
    wanted = st.session_state.get("ft_selected_job")
    if wanted in ids and st.session_state.get("ft_job_pick") != wanted:
        st.session_state["ft_job_pick"] = wanted
    st.session_state.pop("ft_selected_job", None)
    by_id = {j.id: j for j in jobs}
    pick = st.selectbox("Job", ids, key="ft_job_pick",
                        format_func=lambda i: f"{i} · {by_id[i].status} · {by_id[i].backend} · {iso(by_id[i].created_at)}")
    with st.container(border=True):
        show_job(by_id[pick])


jobs_section()
