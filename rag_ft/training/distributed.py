"""The bundle trainer on GPUs, one or several (``accelerate launch -m rag_ft train ...``).

The app's trainer (``lora.train``) is a CPU loop tuned for two cores. On a bigger machine the same data, chat
template, loss mask (assistant turns only), LoRA settings and adapter format are trained with ``accelerate``:
each process gets its share of every batch (data parallel; ``batch_size`` stays the global batch) and gradients
are averaged, so N GPUs take the same steps one would, N times faster.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

from rag_ft.training import lora


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def is_main() -> bool:
    return int(os.environ.get("RANK", "0") or 0) == 0


def has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def collate(batch: list[lora.Example], pad_id: int) -> dict[str, Any]:
    import torch

    width = max(len(e.input_ids) for e in batch)
    pad = [width - len(e.input_ids) for e in batch]
    return {"input_ids": torch.tensor([e.input_ids + [pad_id] * p for e, p in zip(batch, pad, strict=True)]),
            "attention_mask": torch.tensor([[1] * len(e.input_ids) + [0] * p for e, p in zip(batch, pad, strict=True)]),
            "labels": torch.tensor([e.labels + [-100] * p for e, p in zip(batch, pad, strict=True)])}


def train(records: list[dict[str, Any]], out_dir: str | Path, *, validation: list[dict[str, Any]] | None = None,
          epochs: int = 3, batch_size: int = 4, learning_rate: float = 1e-3, rank: int = 8, alpha: int = 16,
          seed: int = 0, max_steps: int | None = None, on_step: Any = None) -> lora.TrainResult:
    """Train under accelerate; only the main process saves the adapter (``out_dir``) and calls ``on_step``."""
    import torch
    from accelerate import Accelerator
    from peft import LoraConfig, get_peft_model
    from torch.utils.data import DataLoader

    t0 = time.perf_counter()
    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    acc = Accelerator(mixed_precision="bf16" if bf16 else "no")
    torch.manual_seed(seed)
    tok = lora.load_tokenizer()
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    train_ex = lora.prepare(records, tok, "training data")
    valid_ex = lora.prepare(validation, tok, "validation data") if validation else []
    model = get_peft_model(lora.load_base(), LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.05,
                                                        target_modules=lora.TARGET_MODULES, task_type="CAUSAL_LM"))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    per_process = max(1, math.ceil(batch_size / acc.num_processes))
    loader = DataLoader(train_ex, batch_size=per_process, shuffle=True, collate_fn=lambda b: collate(b, pad_id),
                        generator=torch.Generator().manual_seed(seed))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=learning_rate)
    model, optimizer, loader = acc.prepare(model, optimizer, loader)
    n_total = min(epochs * len(loader), max_steps) if max_steps else epochs * len(loader)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1 - s / max(n_total, 1)))
    result = lora.TrainResult(None, 0, n_total, epochs, 0.0, None, None, trainable, n_examples=len(train_ex),
                              n_tokens=sum(len(e.input_ids) for e in train_ex))
    model.train()
    step, t_train = 0, time.perf_counter()
    for epoch in range(epochs):
        losses = []
        for batch in loader:
            if step >= n_total:
                break
            loss = model(**batch).loss  # the model's own loss on labels masked to the answers (= lora.answer_loss)
            acc.backward(loss)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            losses.append(float(acc.reduce(loss.detach(), "mean")))
            if on_step and acc.is_main_process:
                elapsed = time.perf_counter() - t_train
                on_step(lora.StepInfo(step, n_total, round(epoch + len(losses) / len(loader), 3), losses[-1],
                                      scheduler.get_last_lr()[0], elapsed, elapsed / step * (n_total - step)))
        if losses:
            result.epoch_train_loss.append(sum(losses) / len(losses))
            result.final_train_loss = losses[-1]
        if valid_ex:
            result.epoch_valid_loss.append(_valid_loss(acc, model, valid_ex, pad_id, per_process))
        if step >= n_total:
            break
    result.steps = step
    result.final_valid_loss = result.epoch_valid_loss[-1] if result.epoch_valid_loss else None
    acc.wait_for_everyone()
    if acc.is_main_process:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        acc.unwrap_model(model).save_pretrained(str(out))
        tok.save_pretrained(str(out))
    result.adapter_dir = str(out_dir)
    result.seconds = time.perf_counter() - t0
    acc.wait_for_everyone()
    return result


def _valid_loss(acc: Any, model: Any, examples: list[lora.Example], pad_id: int, batch_size: int) -> float:
    import torch

    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(examples), batch_size):
            batch = {k: v.to(acc.device) for k, v in collate(examples[i:i + batch_size], pad_id).items()}
            total += float(model(**batch).loss)
            n += 1
    model.train()
    return total / max(n, 1)
