"""An HTTP-level fake of Together AI's fine-tuning API, on the FakeOpenAI server (127.0.0.1, threads).

Written from Together's API reference (docs.together.ai; the ``together`` SDK's types): multipart
``POST /v1/files/upload`` (file, file_name, purpose=fine-tune); ``POST /v1/fine-tunes`` with the LoRA parameters
(``lora``, ``lora_r``, ``lora_alpha``, ``n_epochs``, ``batch_size`` >= 8, ``learning_rate``, ``suffix``,
``validation_file``, ``n_evals``); ``GET /v1/fine-tunes/{id}`` whose ``status`` moves on with every poll
(pending -> queued -> running -> compressing -> uploading -> completed, with ``output_name``);
``GET /v1/fine-tunes/{id}/events`` (every event, oldest first, each with a ``hash``); ``POST .../cancel``
(cancel_requested, then cancelled). Scenarios in ``fake.state``: ``tg_fail`` (the job ends in ``error``).
Errors are OpenAI-style ``{"error": {"message", "type"}}``. Nothing of ours is patched.
"""

from __future__ import annotations

import re
import time
import uuid
from email.parser import BytesParser
from email.policy import default as email_policy
from typing import Any

from fake_openai import FakeOpenAI, Request, Response, error

MODELS = ("meta-llama/Meta-Llama-3.1-8B-Instruct-Reference", "Qwen/Qwen2.5-7B-Instruct",
          "meta-llama/Llama-3.2-3B-Instruct")
PROGRESSION = ("pending", "queued", "running", "running", "compressing", "uploading", "completed")
TOTAL_STEPS = 4


def multipart(req: Request) -> dict[str, Any]:
    """Form fields of a multipart body: bytes for files, text for the rest."""
    ctype = req.headers.get("content-type", "")
    if "multipart/form-data" not in ctype:
        return {}
    msg = BytesParser(policy=email_policy).parsebytes(f"Content-Type: {ctype}\r\n\r\n".encode() + req.body)
    out: dict[str, Any] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        out[name] = payload if part.get_filename() else payload.decode().strip()
    return out


def _iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def _event(job: dict[str, Any], message: str, type_: str = "JOB_PROGRESS", level: str = "Info", **extra: Any) -> None:
    job["_events"].append({"object": "fine-tune-event", "created_at": _iso(), "level": level, "message": message,
                           "type": type_, "hash": uuid.uuid4().hex, **extra})


def upload(fake: FakeOpenAI, req: Request, m: re.Match) -> Response:
    form = multipart(req)
    if "file" not in form or form.get("purpose") != "fine-tune":
        return error(400, "file and purpose=fine-tune are required", "invalid_request_error")
    fid = f"file-{uuid.uuid4()}"
    fake.state.setdefault("tg_files", {})[fid] = form["file"]
    return Response(json={"id": fid, "object": "file", "filename": form.get("file_name", "upload.jsonl"),
                          "bytes": len(form["file"]), "purpose": "fine-tune", "FileType": "jsonl",
                          "Processed": True, "LineCount": form["file"].count(b"\n")})


def create(fake: FakeOpenAI, req: Request, m: re.Match) -> Response:
    body = req.json or {}
    files = fake.state.get("tg_files", {})
    if body.get("training_file") not in files:
        return error(400, f"training_file {body.get('training_file')!r} not found", "invalid_request_error")
    if body.get("validation_file") and body["validation_file"] not in files:
        return error(400, "validation_file not found", "invalid_request_error")
    if body.get("model") not in MODELS:
        return error(400, f"Model {body.get('model')} is not available for fine-tuning", "invalid_request_error")
    if int(body.get("batch_size", 8)) < 8:
        return error(400, "batch_size must be at least 8", "invalid_request_error")
    jid = f"ft-{uuid.uuid4()}"
    name = f"fakeuser/{body['model'].split('/')[-1]}-{body.get('suffix') or 'ft'}-{jid[3:11]}"
    job = {"id": jid, "status": "pending", "created_at": _iso(), "updated_at": _iso(), "total_steps": TOTAL_STEPS,
           "steps_completed": 0, "output_name": None, "_name": name, "_polls": 0, "_events": [], "_request": body,
           **{k: body.get(k) for k in ("model", "training_file", "validation_file", "n_epochs", "batch_size",
                                       "learning_rate", "lora", "lora_r", "lora_alpha", "suffix", "n_evals")}}
    _event(job, "Fine tune request created", "JOB_PENDING")
    fake.state.setdefault("tg_jobs", {})[jid] = job
    return Response(json=_public(job))


def _public(job: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in job.items() if not k.startswith("_")}


def _job(fake: FakeOpenAI, jid: str) -> dict[str, Any] | None:
    return fake.state.get("tg_jobs", {}).get(jid)


def retrieve(fake: FakeOpenAI, req: Request, m: re.Match) -> Response:
    job = _job(fake, m["id"])
    if job is None:
        return error(404, "fine-tune job not found", "invalid_request_error")
    if job["status"] == "cancel_requested":
        job["status"] = "cancelled"
        _event(job, "Job cancelled", "JOB_CANCELLED")
    elif job["status"] not in ("completed", "error", "cancelled"):
        job["_polls"] += 1
        status = PROGRESSION[min(job["_polls"], len(PROGRESSION) - 1)]
        if fake.state.get("tg_fail") and status == "running":
            job["status"] = "error"
            _event(job, "Training failed: CUDA out of memory", "JOB_ERROR", "Error")
            return Response(json=_public(job))
        if status == "running":
            step = job["steps_completed"] = min(TOTAL_STEPS, job["steps_completed"] + 2)
            for s in (step - 1, step):
                _event(job, f"Step {s}/{TOTAL_STEPS}", "TRAINING_PROGRESS", step=s, epoch=s / 2,
                       train_loss=round(2.0 / s, 3))
            _event(job, f"Checkpoint saved at step {step}", "CHECKPOINT_SAVE", step=step,
                   checkpoint_path=f"s3://together/{job['id']}/checkpoint-{step}")
        if status == "completed" and job["status"] != "completed":
            job["output_name"] = job["_name"]
            _event(job, f"Job finished: model {job['_name']} is ready", "JOB_COMPLETE")
        job["status"] = status
    return Response(json=_public(job))


def events(fake: FakeOpenAI, req: Request, m: re.Match) -> Response:
    job = _job(fake, m["id"])
    if job is None:
        return error(404, "fine-tune job not found", "invalid_request_error")
    return Response(json={"object": "list", "data": job["_events"]})


def cancel(fake: FakeOpenAI, req: Request, m: re.Match) -> Response:
    job = _job(fake, m["id"])
    if job is None:
        return error(404, "fine-tune job not found", "invalid_request_error")
    if job["status"] in ("completed", "error", "cancelled"):
        return error(400, f"Cannot cancel a job in status {job['status']}", "invalid_request_error")
    job["status"] = "cancel_requested"
    _event(job, "Cancel requested", "JOB_CANCEL_REQUESTED")
    return Response(json=_public(job))


def install(fake: FakeOpenAI) -> FakeOpenAI:
    fake.route("POST", "/files/upload", upload)
    fake.route("POST", "/fine-tunes", create)
    fake.route("GET", r"/fine-tunes/(?P<id>[^/]+)", retrieve)
    fake.route("GET", r"/fine-tunes/(?P<id>[^/]+)/events", events)
    fake.route("POST", r"/fine-tunes/(?P<id>[^/]+)/cancel", cancel)
    return fake
