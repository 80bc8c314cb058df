"""An HTTP-level fake of Fireworks AI's fine-tuning and deployment API, on the FakeOpenAI server (127.0.0.1).

Written from Fireworks' API reference (docs.fireworks.ai/api-reference), under ``/v1/accounts/{account}``:
``POST datasets`` {datasetId, dataset: {userUploaded, exampleCount}} (state UPLOADING), ``POST
datasets/{id}:upload`` multipart ``file`` (state READY; a job on a dataset that is not READY is refused);
``POST supervisedFineTuningJobs`` {dataset, evaluationDataset, baseModel, outputModel, epochs, learningRate,
loraRank, maxContextLength}; ``GET`` the job's name, whose ``state`` moves on with every poll (JOB_STATE_CREATING ->
PENDING -> RUNNING with ``jobProgress`` -> COMPLETED); ``DELETE`` it to stop it; ``GET/POST deployedModels`` (a
LoRA add-on is DEPLOYING, then DEPLOYED on the next listing). Errors are Google-style
``{"error": {"code", "message", "status"}}``. Scenarios in ``fake.state``: ``fw_fail`` (JOB_STATE_FAILED with
``status.message``). The account in the path must be ``ACCOUNT``. Nothing of ours is patched.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from fake_openai import FakeOpenAI, Request, Response
from fake_together import multipart

ACCOUNT = "acme-test"
MODELS = ("accounts/fireworks/models/llama-v3p1-8b-instruct", "accounts/fireworks/models/qwen2p5-7b-instruct",
          "accounts/fireworks/models/llama-v3p2-3b-instruct")
PROGRESSION = ("JOB_STATE_CREATING", "JOB_STATE_PENDING", "JOB_STATE_RUNNING", "JOB_STATE_COMPLETED")
ACCT = r"/accounts/(?P<acct>[^/]+)"


def gerror(code: int, message: str, status: str) -> Response:
    return Response(code, {"error": {"code": code, "message": message, "status": status}})


def _account(m: re.Match) -> Response | None:
    return None if m["acct"] == ACCOUNT else gerror(403, f"Permission denied on account {m['acct']}",
                                                    "PERMISSION_DENIED")


def create_dataset(fake: FakeOpenAI, req: Request, m: re.Match) -> Response:
    if (refused := _account(m)) is not None:
        return refused
    body = req.json or {}
    did = body.get("datasetId") or ""
    if not re.fullmatch(r"[a-z][a-z0-9-]{0,62}", did):
        return gerror(400, f"invalid datasetId {did!r}", "INVALID_ARGUMENT")
    ds = {"name": f"accounts/{ACCOUNT}/datasets/{did}", "state": "UPLOADING",
          "exampleCount": (body.get("dataset") or {}).get("exampleCount"), "_content": b""}
    fake.state.setdefault("fw_datasets", {})[ds["name"]] = ds
    return Response(json={k: v for k, v in ds.items() if not k.startswith("_")})


def upload_dataset(fake: FakeOpenAI, req: Request, m: re.Match) -> Response:
    ds = fake.state.get("fw_datasets", {}).get(f"accounts/{m['acct']}/datasets/{m['id']}")
    if ds is None:
        return gerror(404, "dataset not found", "NOT_FOUND")
    form = multipart(req)
    if not isinstance(form.get("file"), bytes):
        return gerror(400, "a multipart 'file' is required", "INVALID_ARGUMENT")
    ds["_content"], ds["state"] = form["file"], "READY"
    return Response(json={})


def create_job(fake: FakeOpenAI, req: Request, m: re.Match) -> Response:
    if (refused := _account(m)) is not None:
        return refused
    body = req.json or {}
    datasets = fake.state.get("fw_datasets", {})
    for key in ("dataset", "evaluationDataset"):
        if key in body and (datasets.get(body[key]) or {}).get("state") != "READY":
            return gerror(400, f"{key} {body[key]!r} is not READY", "FAILED_PRECONDITION")
    if body.get("baseModel") not in MODELS:
        return gerror(400, f"baseModel {body.get('baseModel')!r} is not tunable", "INVALID_ARGUMENT")
    if not str(body.get("outputModel", "")).startswith(f"accounts/{ACCOUNT}/models/"):
        return gerror(400, "outputModel must be a model of this account", "INVALID_ARGUMENT")
    job = {"name": f"accounts/{ACCOUNT}/supervisedFineTuningJobs/{uuid.uuid4().hex[:12]}",
           "state": PROGRESSION[0], "_polls": 0, "_request": body,
           **{k: body.get(k) for k in ("displayName", "baseModel", "dataset", "evaluationDataset", "outputModel",
                                       "epochs", "learningRate", "loraRank", "maxContextLength")}}
    fake.state.setdefault("fw_jobs", {})[job["name"]] = job
    return Response(json=_public(job))


def _public(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if not k.startswith("_")}


def get_job(fake: FakeOpenAI, req: Request, m: re.Match) -> Response:
    job = fake.state.get("fw_jobs", {}).get(f"accounts/{m['acct']}/supervisedFineTuningJobs/{m['id']}")
    if job is None:
        return gerror(404, "job not found", "NOT_FOUND")
    if job["state"] not in ("JOB_STATE_COMPLETED", "JOB_STATE_FAILED"):
        job["_polls"] += 1
        job["state"] = PROGRESSION[min(job["_polls"], len(PROGRESSION) - 1)]
        if job["state"] == "JOB_STATE_RUNNING":
            job["jobProgress"] = {"percent": 50, "epoch": 0}
            if fake.state.get("fw_fail"):
                job["state"], job["status"] = "JOB_STATE_FAILED", {"code": "INTERNAL",
                                                                   "message": "training diverged (loss is NaN)"}
        if job["state"] == "JOB_STATE_COMPLETED":
            job["jobProgress"] = {"percent": 100, "epoch": job.get("epochs")}
    return Response(json=_public(job))


def delete_job(fake: FakeOpenAI, req: Request, m: re.Match) -> Response:
    name = f"accounts/{m['acct']}/supervisedFineTuningJobs/{m['id']}"
    if fake.state.get("fw_jobs", {}).pop(name, None) is None:
        return gerror(404, "job not found", "NOT_FOUND")
    fake.state.setdefault("fw_deleted", []).append(name)
    return Response(json={})


def list_deployed(fake: FakeOpenAI, req: Request, m: re.Match) -> Response:
    if (refused := _account(m)) is not None:
        return refused
    deployed = fake.state.setdefault("fw_deployed", [])
    for d in deployed:  # a listing after creation finds it deployed
        d["state"] = "DEPLOYED" if d["state"] == "DEPLOYING" else d["state"]
    wanted = re.search(r'model%3D%22(.+?)%22|model="(.+?)"', req.query)
    model = (wanted.group(1) or wanted.group(2)).replace("%2F", "/") if wanted else None
    return Response(json={"deployedModels": [d for d in deployed if model is None or d["model"] == model]})


def deploy(fake: FakeOpenAI, req: Request, m: re.Match) -> Response:
    if (refused := _account(m)) is not None:
        return refused
    body = req.json or {}
    trained = {j["outputModel"] for j in fake.state.get("fw_jobs", {}).values() if j["state"] == "JOB_STATE_COMPLETED"}
    if body.get("model") not in trained:
        return gerror(404, f"model {body.get('model')!r} not found", "NOT_FOUND")
    d = {"name": f"accounts/{ACCOUNT}/deployedModels/{uuid.uuid4().hex[:8]}", "model": body["model"],
         "state": "DEPLOYING", "serverless": bool(body.get("serverless"))}
    fake.state.setdefault("fw_deployed", []).append(d)
    return Response(json=d)


def install(fake: FakeOpenAI) -> FakeOpenAI:
    fake.route("POST", f"{ACCT}/datasets", create_dataset)
    fake.route("POST", f"{ACCT}/datasets/(?P<id>[^/:]+):upload", upload_dataset)
    fake.route("POST", f"{ACCT}/supervisedFineTuningJobs", create_job)
    fake.route("GET", f"{ACCT}/supervisedFineTuningJobs/(?P<id>[^/]+)", get_job)
    fake.route("DELETE", f"{ACCT}/supervisedFineTuningJobs/(?P<id>[^/]+)", delete_job)
    fake.route("GET", f"{ACCT}/deployedModels", list_deployed)
    fake.route("POST", f"{ACCT}/deployedModels", deploy)
    return fake


def root_url(fake: FakeOpenAI) -> str:
    """FIREWORKS_BASE_URL for the fake: the server root (paths start with /v1/accounts)."""
    return fake.base_url.removesuffix("/v1")
