"""Fine-tuning routes for the FakeOpenAI server: files, jobs, events, checkpoints, result files.

Behaves like the real API at the HTTP level: multipart upload to /files, job objects whose status moves
on with every poll (validating_files -> queued -> running -> succeeded), events newest first with
``after`` + ``limit`` cursors and ``has_more``, a checkpoint per epoch, a base64-encoded metrics CSV as
the result file, and the failure paths (invalid file with ``error.param``, 403 permission denied,
429 insufficient quota, cancel). Scenarios are switched with ``fake.state``:
``ft_deny`` (403 on job create), ``ft_quota`` (429 on job create), ``ft_status`` (force a status string).

Use: ``install(fake_openai)`` in a test, then point the real ``openai`` client at ``fake.base_url``.
"""

from __future__ import annotations

import base64
import json
import math
import re
import time
from email.parser import BytesParser
from email.policy import default as email_policy
from typing import Any
from urllib.parse import parse_qs

from fake_openai import FakeOpenAI, Request, Response, error

STEPS_PER_POLL = 2


def _query(req: Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(req.query).items()}


def _ids(fake: FakeOpenAI, prefix: str) -> str:
    n = fake.state["ft_seq"] = fake.state.get("ft_seq", 0) + 1
    return f"{prefix}{n:06d}"


def _files(fake: FakeOpenAI) -> dict[str, dict[str, Any]]:
    return fake.state.setdefault("files", {})


def _jobs(fake: FakeOpenAI) -> dict[str, dict[str, Any]]:
    return fake.state.setdefault("jobs", {})


def _file_object(f: dict[str, Any]) -> dict[str, Any]:
    return {k: f[k] for k in ("id", "object", "bytes", "created_at", "filename", "purpose", "status")}


def upload_file(fake: FakeOpenAI, req: Request, m: re.Match) -> Response:
    ctype = req.headers.get("content-type", "")
    if "multipart/form-data" not in ctype:
        return error(400, "Expected a multipart/form-data body.", "invalid_request_error")
    msg = BytesParser(policy=email_policy).parsebytes(f"Content-Type: {ctype}\r\n\r\n".encode() + req.body)
    fields: dict[str, Any] = {}
    filename = None
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.get_filename():
            filename = part.get_filename()
            fields[name] = part.get_payload(decode=True)
        else:
            fields[name] = part.get_content().strip() if part.get_content_type().startswith("text") else \
                part.get_payload(decode=True).decode()
    if "file" not in fields:
        return error(400, "'file' is a required property", "invalid_request_error", None, "file")
    if fields.get("purpose") not in ("fine-tune", "assistants", "batch", "user_data", "vision", "evals"):
        return error(400, f"'{fields.get('purpose')}' is not one of the allowed purposes", "invalid_request_error",
                     None, "purpose")
    fid = _ids(fake, "file-")
    content = fields["file"]
    _files(fake)[fid] = {"id": fid, "object": "file", "bytes": len(content), "created_at": int(time.time()),
                         "filename": filename or "upload", "purpose": fields["purpose"], "status": "processed",
                         "content": content}
    return Response(json=_file_object(_files(fake)[fid]))


def file_content(fake: FakeOpenAI, req: Request, m: re.Match) -> Response:
    f = _files(fake).get(m["fid"])
    if f is None:
        return error(404, f"No such File object: {m['fid']}", "invalid_request_error", None, "id")
    return Response(raw=f["content"])


def _file_problem(content: bytes) -> str | None:
    for n, line in enumerate(content.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            return f"Invalid file format. Line {n}, key \"messages\": not valid JSON."
        msgs = rec.get("messages") if isinstance(rec, dict) else None
        if not isinstance(msgs, list) or not any(isinstance(x, dict) and x.get("role") == "assistant" for x in msgs):
            return f"Invalid file format. Example {n} is missing an assistant message."
    return None


def _public(job: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in job.items() if not k.startswith("_")}


def _event(fake: FakeOpenAI, job: dict[str, Any], message: str, level: str = "info", data: Any = None,
           type_: str = "message") -> None:
    job["_events"].append({"object": "fine_tuning.job.event", "id": _ids(fake, "ftevent-"),
                           "created_at": int(time.time()), "level": level, "message": message,
                           "data": data or {}, "type": type_})


def create_job(fake: FakeOpenAI, req: Request, m: re.Match) -> Response:
    body = req.json or {}
    if fake.state.get("ft_deny"):
        return error(403, "You have been denied access to fine-tuning: your organization is not allowed to "
                     "create fine-tuning jobs.", "invalid_request_error", "permission_denied")
    if fake.state.get("ft_quota"):
        return error(429, "You exceeded your current quota, please check your plan and billing details.",
                     "insufficient_quota", "insufficient_quota")
    for key in ("model", "training_file"):
        if not body.get(key):
            return error(400, f"Missing required parameter: '{key}'.", "invalid_request_error", "missing_required_parameter", key)
    for key in ("training_file", "validation_file"):
        if body.get(key) and body[key] not in _files(fake):
            return error(400, f"invalid file id: {body[key]}", "invalid_request_error", "invalid_file_id", key)
    if body["model"] not in ("gpt-4o-mini-2024-07-18", "gpt-4.1-mini-2025-04-14", "gpt-4.1-nano-2025-04-14"):
        return error(400, f"Model {body['model']} is not available for fine-tuning or does not exist.",
                     "invalid_request_error", "model_not_available", "model")
    method = body.get("method") or {"type": "supervised", "supervised": {"hyperparameters": {}}}
    hp = dict(method.get(method.get("type", "supervised"), {}).get("hyperparameters") or {})
    n_train = len([x for x in _files(fake)[body["training_file"]]["content"].splitlines() if x.strip()])
    epochs = hp.get("n_epochs", "auto")
    epochs = 3 if epochs == "auto" else int(epochs)
    batch = hp.get("batch_size", "auto")
    batch = 1 if batch == "auto" else int(batch)
    resolved = {"n_epochs": epochs, "batch_size": batch,
                "learning_rate_multiplier": 1.8 if hp.get("learning_rate_multiplier", "auto") == "auto"
                else float(hp["learning_rate_multiplier"])}
    method = {"type": "supervised", "supervised": {"hyperparameters": resolved}}
    jid = _ids(fake, "ftjob-")
    job = {"object": "fine_tuning.job", "id": jid, "model": body["model"], "created_at": int(time.time()),
           "finished_at": None, "fine_tuned_model": None, "organization_id": "org-fake", "result_files": [],
           "status": "validating_files", "validation_file": body.get("validation_file"),
           "training_file": body["training_file"], "hyperparameters": resolved, "method": method,
           "trained_tokens": None, "error": None, "seed": body.get("seed", 42), "estimated_finish": None,
           "integrations": [], "metadata": body.get("metadata"), "user_provided_suffix": body.get("suffix"),
           "_suffix": body.get("suffix"), "_events": [], "_checkpoints": [], "_step": 0,
           "_total": epochs * math.ceil(n_train / batch), "_per_epoch": math.ceil(n_train / batch)}
    _jobs(fake)[jid] = job
    _event(fake, job, f"Validating training file: {body['training_file']}")
    return Response(json=_public(job))


def _advance(fake: FakeOpenAI, job: dict[str, Any]) -> None:
    """Every poll moves the job on, like a real job seen a minute later."""
    status = job["status"]
    if status == "validating_files":
        problem = _file_problem(_files(fake)[job["training_file"]]["content"])
        if problem:
            job.update(status="failed", finished_at=int(time.time()), error={
                "code": "invalid_training_file", "param": "training_file",
                "message": f"The job failed due to an invalid training file. {problem}"})
            _event(fake, job, job["error"]["message"], "error")
            return
        job["status"] = "queued"
        _event(fake, job, "Files validated, moving job to queued state")
    elif status == "queued":
        job["status"] = "running"
        job["estimated_finish"] = int(time.time()) + 60
        _event(fake, job, "Fine-tuning job started")
    elif status == "running":
        for _ in range(STEPS_PER_POLL):
            job["_step"] += 1
            step, total = job["_step"], job["_total"]
            loss = round(2.0 / (1 + step), 4)
            data = {"step": step, "train_loss": loss, "total_steps": total, "train_mean_token_accuracy": 0.5 + step / (4 * total)}
            if step % job["_per_epoch"] == 0:
                data.update(valid_loss=round(loss * 1.1, 4), valid_mean_token_accuracy=0.45 + step / (4 * total))
                ck = {"object": "fine_tuning.job.checkpoint", "id": _ids(fake, "ftckpt_"),
                      "created_at": int(time.time()), "fine_tuning_job_id": job["id"], "step_number": step,
                      "fine_tuned_model_checkpoint": f"ft:{job['model']}:org-fake:{job['_suffix'] or ''}:"
                                                     f"{job['id'][-6:]}:ckpt-step-{step}",
                      "metrics": {"step": float(step), "train_loss": loss, "valid_loss": data["valid_loss"],
                                  "train_mean_token_accuracy": data["train_mean_token_accuracy"],
                                  "valid_mean_token_accuracy": data["valid_mean_token_accuracy"]}}
                job["_checkpoints"].append(ck)
            _event(fake, job, f"Step {step}/{total}: training loss={loss:.4f}", data=data, type_="metrics")
            if step >= total:
                model = f"ft:{job['model']}:org-fake:{job['_suffix'] or ''}:{job['id'][-6:]}"
                rows = ["step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy"]
                for ev in job["_events"]:
                    d = ev["data"] if ev["type"] == "metrics" else None
                    if d:
                        rows.append(f"{d['step']},{d['train_loss']},{d['train_mean_token_accuracy']},"
                                    f"{d.get('valid_loss', '')},{d.get('valid_mean_token_accuracy', '')}")
                csv_b64 = base64.b64encode(("\n".join(rows) + "\n").encode())  # as OpenAI serves it
                rid = _ids(fake, "file-")
                _files(fake)[rid] = {"id": rid, "object": "file", "bytes": len(csv_b64), "filename": "step_metrics.csv",
                                     "created_at": int(time.time()), "purpose": "fine-tune-results",
                                     "status": "processed", "content": csv_b64}
                job.update(status="succeeded", fine_tuned_model=model, finished_at=int(time.time()),
                           result_files=[rid], trained_tokens=1234 * total)
                _event(fake, job, f"New fine-tuned model created: {model}")
                _event(fake, job, "The job has successfully completed")
                return


def get_job(fake: FakeOpenAI, req: Request, m: re.Match) -> Response:
    job = _jobs(fake).get(m["jid"])
    if job is None:
        return error(404, f"No such fine-tuning job: {m['jid']}", "invalid_request_error", None, "id")
    _advance(fake, job)
    out = _public(job)
    if fake.state.get("ft_status"):
        out["status"] = fake.state["ft_status"]
    return Response(json=out)


def _page(items: list[dict[str, Any]], req: Request) -> Response:
    """Newest first; ``after`` = the last id of the previous page; ``limit`` (default 20)."""
    q = _query(req)
    items = list(reversed(items))
    if "after" in q:
        ids = [x["id"] for x in items]
        items = items[ids.index(q["after"]) + 1:] if q["after"] in ids else []
    limit = int(q.get("limit", 20))
    page = items[:limit]
    body = {"object": "list", "data": page, "has_more": len(items) > limit}
    return Response(json=body)


def list_jobs(fake: FakeOpenAI, req: Request, m: re.Match) -> Response:
    return _page([_public(j) for j in _jobs(fake).values()], req)


def list_events(fake: FakeOpenAI, req: Request, m: re.Match) -> Response:
    job = _jobs(fake).get(m["jid"])
    if job is None:
        return error(404, f"No such fine-tuning job: {m['jid']}", "invalid_request_error", None, "id")
    return _page(job["_events"], req)


def list_checkpoints(fake: FakeOpenAI, req: Request, m: re.Match) -> Response:
    job = _jobs(fake).get(m["jid"])
    if job is None:
        return error(404, f"No such fine-tuning job: {m['jid']}", "invalid_request_error", None, "id")
    resp = _page(job["_checkpoints"], req)
    data = resp.json["data"]
    resp.json.update(first_id=data[0]["id"] if data else None, last_id=data[-1]["id"] if data else None)
    return resp


def cancel_job(fake: FakeOpenAI, req: Request, m: re.Match) -> Response:
    job = _jobs(fake).get(m["jid"])
    if job is None:
        return error(404, f"No such fine-tuning job: {m['jid']}", "invalid_request_error", None, "id")
    if job["status"] in ("succeeded", "failed", "cancelled"):
        return error(400, f"Job has already {job['status']}: cannot cancel.", "invalid_request_error")
    job.update(status="cancelled", finished_at=int(time.time()))
    _event(fake, job, "Job cancelled")
    return Response(json=_public(job))


def install(fake: FakeOpenAI) -> FakeOpenAI:
    fake.route("POST", "/files", upload_file)
    fake.route("GET", r"/files/(?P<fid>[\w-]+)/content", file_content)
    fake.route("POST", "/fine_tuning/jobs", create_job)
    fake.route("GET", "/fine_tuning/jobs", list_jobs)
    fake.route("GET", r"/fine_tuning/jobs/(?P<jid>[\w-]+)", get_job)
    fake.route("POST", r"/fine_tuning/jobs/(?P<jid>[\w-]+)/cancel", cancel_job)
    fake.route("GET", r"/fine_tuning/jobs/(?P<jid>[\w-]+)/events", list_events)
    fake.route("GET", r"/fine_tuning/jobs/(?P<jid>[\w-]+)/checkpoints", list_checkpoints)
    return fake
