"""The grounding adapter: a LoRA adapter, trained and committed by this project, that makes the small local
model answer from the numbered passages, mark claims with [n], and say when the passages do not cover it.

How it was made: ``grounding/train_adapter.py`` (data: ``grounding/make_data.py``; card: the adapter's README).
"""

from __future__ import annotations

from pathlib import Path

from rag_ft.settings import LOCAL_CHAT_MODEL, ROOT

ADAPTER_DIR = ROOT / "models" / "grounding-adapter"
MODEL_LABEL = "SmolLM2-135M + grounding adapter"
BASE_MODEL = LOCAL_CHAT_MODEL
# The two files peft needs to load an adapter; a folder without them is not offered in the picker.
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def adapter_available(adapter_dir: Path = ADAPTER_DIR) -> bool:
    """True when the committed adapter is present (a checkout without it falls back to the base model)."""
    return all((adapter_dir / name).is_file() for name in ADAPTER_FILES)
