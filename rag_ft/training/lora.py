"""Local LoRA fine-tuning of the base chat model on CPU (transformers + peft, a plain torch loop).

Each chat record is rendered with the model's own chat template; the loss covers the assistant turns
only (the tokens between an assistant prompt header and the end of that turn), so the model learns to
answer, not to repeat prompts. The adapter is saved with ``save_pretrained`` (peft format, ~4 MB) so
``LocalChatModel(adapter_dir=...)`` serves it on top of the shared base model.

Measured here (local-models.md §4): 40 examples x 3 epochs, batch 4 = 30 steps in ~66 s on 2 cores,
peak RSS ~3.8 GB. The trainer loads its own copy of the base model: training changes the weights it
wraps, so it never borrows the serving runtime's model.
"""

from __future__ import annotations

import copy
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from rag_ft import offline  # noqa: F401
from rag_ft.training.jobs import record_problem

TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj"]
MAX_TOKENS = 1024  # longer examples are cut (the assistant answer is kept whenever it fits)
MIN_FREE_BYTES = 4 * 1024**3  # peak RSS measured 3.8 GB


class TrainingError(ValueError):
    """The data cannot be trained on; the message says which example and why."""


@dataclass(frozen=True)
class StepInfo:
    step: int
    total_steps: int
    epoch: float  # fractional epoch at this step (1.0 = end of the first epoch)
    train_loss: float
    learning_rate: float
    elapsed_s: float
    eta_s: float
    valid_loss: float | None = None  # set at the end of an epoch when there is validation data
    valid_token_accuracy: float | None = None
    checkpoint_dir: str | None = None  # set at the end of an epoch (adapter saved there)
    end_of_epoch: bool = False


@dataclass
class TrainResult:
    adapter_dir: str | None  # None when stopped before the end
    steps: int
    total_steps: int
    epochs: int
    seconds: float
    final_train_loss: float | None
    final_valid_loss: float | None
    trainable_params: int
    stopped: bool = False
    epoch_train_loss: list[float] = field(default_factory=list)
    epoch_valid_loss: list[float] = field(default_factory=list)
    checkpoints: list[str] = field(default_factory=list)
    n_examples: int = 0
    n_tokens: int = 0  # trained tokens per epoch (all, not only assistant)


@dataclass(frozen=True)
class Example:
    input_ids: list[int]
    labels: list[int]  # -100 where the loss is masked


@lru_cache(maxsize=1)
def load_tokenizer() -> Any:
    from transformers import AutoTokenizer

    from rag_ft.models.local_chat import GGUF_FILE, gguf_dir

    return AutoTokenizer.from_pretrained(gguf_dir(), gguf_file=GGUF_FILE)


@lru_cache(maxsize=1)
def _pristine_base() -> Any:
    return _load_base_fresh()


def _load_base_fresh() -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    from rag_ft.models.local_chat import GGUF_FILE, gguf_dir

    return AutoModelForCausalLM.from_pretrained(gguf_dir(), gguf_file=GGUF_FILE, dtype=torch.float32)


def pick_threads() -> int:
    """Torch threads for training. OpenMP threads spin at every barrier, so on a CPU that other work
    already keeps busy, 2 threads ran a step 8x SLOWER than 1 (measured here: 45-95 s vs 5-15 s per
    step at load average 10 on 2 cores). Use every core only when the machine is quiet."""
    cpus = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:
        return cpus
    return cpus if load < cpus * 0.75 else 1


def load_base(keep_copy: bool = False) -> Any:
    """A base model to train (GGUF dequantised to fp32, ~11 s). ``keep_copy`` caches a pristine copy
    in this process and returns a deep copy (<1 s next time), for scripts and tests that train
    several times; the worker trains once and does not keep one (saves ~0.5 GB)."""
    if keep_copy:
        return copy.deepcopy(_pristine_base())
    return _load_base_fresh()


def tokenize(record: dict[str, Any], tokenizer: Any, max_tokens: int = MAX_TOKENS) -> Example:
    """The chat template of the whole conversation, labels only on assistant turns."""
    messages = [{"role": m["role"], "content": m["content"]} for m in record["messages"]]

    def ids(msgs: list[dict[str, str]], gen: bool) -> list[int]:
        out = tokenizer.apply_chat_template(msgs, add_generation_prompt=gen, tokenize=True, return_dict=True)
        return list(out["input_ids"])

    full = ids(messages, False)
    labels = [-100] * len(full)
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        start = len(ids(messages[:i], True))  # prompt incl. "<|im_start|>assistant\n"
        end = len(ids(messages[: i + 1], False))  # through "<|im_end|>\n": teaches when to stop
        for t in range(start, min(end, len(full))):
            labels[t] = full[t]
    if len(full) > max_tokens:  # keep the end: the answer is the part that teaches
        full, labels = full[-max_tokens:], labels[-max_tokens:]
    return Example(full, labels)


def _batches(examples: list[Example], batch_size: int, rng: random.Random | None) -> list[list[Example]]:
    """Shuffled batches of similar length (like transformers' group_by_length): a batch is padded to its
    longest example, so grouping a shuffled window of 16 batches by length cuts the padded work."""
    order = list(range(len(examples)))
    if rng is not None:
        rng.shuffle(order)
        window = batch_size * 16
        order = [j for w in range(0, len(order), window)
                 for j in sorted(order[w : w + window], key=lambda j: len(examples[j].input_ids))]
    batches = [[examples[j] for j in order[i : i + batch_size]] for i in range(0, len(order), batch_size)]
    if rng is not None:
        rng.shuffle(batches)
    return batches


def _collate(batch: list[Example], pad_id: int) -> dict[str, Any]:
    import torch

    width = max(len(e.input_ids) for e in batch)
    ids = [e.input_ids + [pad_id] * (width - len(e.input_ids)) for e in batch]
    labels = [e.labels + [-100] * (width - len(e.labels)) for e in batch]
    mask = [[1] * len(e.input_ids) + [0] * (width - len(e.input_ids)) for e in batch]
    return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask), "labels": torch.tensor(labels)}


def use_bf16() -> bool:
    """Train under bf16 autocast where the CPU has native bf16 (the same test as serving; LoRA weights and
    optimizer state stay fp32). Measured on 2 AVX512-BF16 cores: 10.5 s vs 14.5 s a step of 4 x 600 tokens."""
    from rag_ft.models.local_chat import serving_dtype

    return serving_dtype() == "bfloat16"


def answer_logits(model: Any, inputs: dict[str, Any]) -> tuple[Any, Any]:
    """Logits (fp32) and labels at the answer positions only.

    The loss covers the assistant tokens (~5-10% of a RAG prompt), so the output projection (49k
    vocabulary x 576) runs only where a label exists instead of at every position: that layer is about
    a fifth of the model's work on a full sequence."""
    import torch

    lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    labels = inputs["labels"][:, 1:]
    keep = labels != -100
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16()):
        hidden = lm.model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).last_hidden_state
        logits = lm.lm_head(hidden[:, :-1, :][keep])
    return logits.float(), labels[keep]


def answer_loss(model: Any, inputs: dict[str, Any]) -> Any:
    """Mean cross-entropy over the answer tokens (the same value as the model's own loss with these labels)."""
    import torch

    logits, labels = answer_logits(model, inputs)
    return torch.nn.functional.cross_entropy(logits, labels)


def evaluate(model: Any, examples: list[Example], pad_id: int, batch_size: int = 4) -> tuple[float, float]:
    """Mean loss per assistant token and token accuracy (greedy next-token == label)."""
    import torch

    total_loss, total_correct, total_tokens = 0.0, 0, 0
    model.eval()
    with torch.no_grad():
        for batch in _batches(examples, batch_size, None):
            logits, labels = answer_logits(model, _collate(batch, pad_id))
            total_loss += float(torch.nn.functional.cross_entropy(logits, labels, reduction="sum"))
            total_correct += int((logits.argmax(-1) == labels).sum())
            total_tokens += int(labels.numel())
    model.train()
    n = max(total_tokens, 1)
    return total_loss / n, total_correct / n


def prepare(records: list[dict[str, Any]], tokenizer: Any, name: str = "training data") -> list[Example]:
    out = []
    for n, rec in enumerate(records, 1):
        problem = record_problem(rec)
        if problem:
            raise TrainingError(f"{name} example {n}: {problem}")
        ex = tokenize(rec, tokenizer)
        if not any(x != -100 for x in ex.labels):
            raise TrainingError(f"{name} example {n}: the assistant answer does not fit in {MAX_TOKENS} tokens.")
        out.append(ex)
    if not out:
        raise TrainingError(f"The {name} has no examples.")
    return out


def total_steps(n_examples: int, epochs: int, batch_size: int, max_steps: int | None = None) -> int:
    steps = epochs * math.ceil(n_examples / batch_size)
    return min(steps, max_steps) if max_steps else steps


def train(
    records: list[dict[str, Any]],
    out_dir: str | Path,
    *,
    validation: list[dict[str, Any]] | None = None,
    epochs: int = 3,
    batch_size: int = 4,
    learning_rate: float = 1e-3,
    rank: int = 8,
    alpha: int = 16,
    dropout: float = 0.05,
    seed: int = 0,
    max_steps: int | None = None,
    on_step: Callable[[StepInfo], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    checkpoints: bool = True,
    model: Any = None,
    keep_base_copy: bool = False,
    threads: int | None = None,
    init_adapter: str | Path | None = None,
) -> TrainResult:
    """Train a LoRA adapter on chat records and save it to ``out_dir`` (peft format).

    ``on_step`` gets a StepInfo after every optimizer step (and the validation loss and the saved
    checkpoint at each epoch end); ``should_stop`` is polled before every step: when it returns True
    training stops, nothing is saved to ``out_dir`` and the result has ``stopped=True``.
    ``model`` may be a freshly loaded base model (it is modified); by default one is loaded.
    ``threads``: torch threads while training (default: ``pick_threads()``); restored afterwards.
    ``init_adapter``: continue training this saved adapter (its rank and alpha) instead of a fresh one.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads or pick_threads())
    try:
        return _train(records, Path(out_dir), validation, epochs, batch_size, learning_rate, rank, alpha, dropout,
                      seed, max_steps, on_step, should_stop, checkpoints, model, keep_base_copy, init_adapter)
    finally:
        torch.set_num_threads(previous)


def _train(records, out_dir, validation, epochs, batch_size, learning_rate, rank, alpha, dropout, seed,
           max_steps, on_step, should_stop, checkpoints, model, keep_base_copy,
           init_adapter=None) -> TrainResult:  # noqa: ANN001
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model

    t0 = time.perf_counter()
    torch.manual_seed(seed)
    rng = random.Random(seed)
    tokenizer = load_tokenizer()
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    train_ex = prepare(records, tokenizer, "training data")
    valid_ex = prepare(validation, tokenizer, "validation data") if validation else []
    if should_stop and should_stop():
        return TrainResult(None, 0, 0, epochs, time.perf_counter() - t0, None, None, 0, stopped=True)

    base = model if model is not None else load_base(keep_copy=keep_base_copy)
    if init_adapter:
        peft_model = PeftModel.from_pretrained(base, str(init_adapter), is_trainable=True)
    else:
        config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=TARGET_MODULES,
                            task_type="CAUSAL_LM")
        peft_model = get_peft_model(base, config)
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=learning_rate)
    n_total = total_steps(len(train_ex), epochs, batch_size, max_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1 - s / max(n_total, 1)))
    steps_per_epoch = math.ceil(len(train_ex) / batch_size)
    result = TrainResult(None, 0, n_total, epochs, 0.0, None, None, trainable, n_examples=len(train_ex),
                         n_tokens=sum(len(e.input_ids) for e in train_ex))
    peft_model.train()
    t_train = time.perf_counter()
    step = 0
    for epoch in range(epochs):
        epoch_losses: list[float] = []
        batches = _batches(train_ex, batch_size, rng)
        for b, batch in enumerate(batches):
            if step >= n_total:
                break
            if should_stop and should_stop():
                result.stopped = True
                break
            inputs = _collate(batch, pad_id)
            loss = answer_loss(peft_model, inputs)
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            epoch_losses.append(loss.item())
            elapsed = time.perf_counter() - t_train
            last_in_epoch = b == len(batches) - 1 or step == n_total
            info = StepInfo(step, n_total, round(epoch + (b + 1) / steps_per_epoch, 3), epoch_losses[-1],
                            scheduler.get_last_lr()[0], elapsed, elapsed / step * (n_total - step))
            if last_in_epoch:
                extra: dict[str, Any] = {"end_of_epoch": True}
                if valid_ex:
                    vloss, vacc = evaluate(peft_model, valid_ex, pad_id, batch_size)
                    extra.update(valid_loss=vloss, valid_token_accuracy=vacc)
                    result.epoch_valid_loss.append(vloss)
                if checkpoints and step < n_total:  # the final adapter goes to out_dir itself
                    ck = out_dir / "checkpoints" / f"epoch-{epoch + 1}"
                    peft_model.save_pretrained(str(ck))
                    extra["checkpoint_dir"] = str(ck)
                    result.checkpoints.append(str(ck))
                info = replace(info, **extra)
            result.steps = step
            result.final_train_loss = epoch_losses[-1]
            if on_step:
                on_step(info)
        if epoch_losses:
            result.epoch_train_loss.append(sum(epoch_losses) / len(epoch_losses))
        if result.stopped or step >= n_total:
            break
    result.final_valid_loss = result.epoch_valid_loss[-1] if result.epoch_valid_loss else None
    if not result.stopped:
        out_dir.mkdir(parents=True, exist_ok=True)
        peft_model.save_pretrained(str(out_dir))
        tokenizer.save_pretrained(str(out_dir))  # the chat template travels with the adapter
        result.adapter_dir = str(out_dir)
    result.seconds = time.perf_counter() - t0
    return result


def free_memory_problem(min_free_bytes: int = MIN_FREE_BYTES) -> str | None:
    """Plain words when this machine has too little free memory to train (None when it is fine)."""
    import psutil

    free = psutil.virtual_memory().available
    if free >= min_free_bytes:
        return None
    return (f"Only {free / 1024**3:.1f} GB of memory is free; local fine-tuning needs about "
            f"{min_free_bytes / 1024**3:.0f} GB (measured peak 3.8 GB). Close other programs, or use OpenAI.")
