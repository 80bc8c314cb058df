"""Does a local LoRA learn the sample style? Train on the sample dataset, compare base vs tuned on held-out prompts.

    .venv/bin/python bench/style.py [--train 50] [--epochs 3] [--json out.json]

The sample answers end with "[Source: <document>, Section <n>]". The held-out prompts (system + user
messages of examples not trained on) go to the base model and to the tuned adapter, both through
``LocalChatModel`` (the chat page's path), greedy. Reports the training time and how often each
model's answer ends in that style. Targets (issue 6): 50 examples x 3 epochs <= 2 min on 2 cores;
tuned >= 80% of held-out prompts where the base model does not follow the style.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag_ft.training import lora  # noqa: E402
from rag_ft.training.jobs import parse_jsonl  # noqa: E402

SAMPLE = ROOT / "sample_docs" / "sample_dataset.jsonl"
STYLE = re.compile(r"\[Source: [^\]\[]+, Section [^\]\[]+\]\s*$")


def follows_style(text: str) -> bool:
    return bool(STYLE.search(text.strip()))


def generate(adapter_dir: str | None, prompts: list[list[dict]], max_new_tokens: int) -> list[str]:
    from langchain_core.messages import HumanMessage, SystemMessage

    from rag_ft.models.local_chat import LocalChatModel

    model = LocalChatModel(adapter_dir=adapter_dir, max_new_tokens=max_new_tokens)
    out = []
    for msgs in prompts:
        lc = [SystemMessage(m["content"]) if m["role"] == "system" else HumanMessage(m["content"]) for m in msgs]
        out.append(model.invoke(lc).content)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(SAMPLE))
    ap.add_argument("--train", type=int, default=50, help="examples to train on; the rest are held out")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: lora.pick_threads())")
    ap.add_argument("--json", help="write the figures and every answer here")
    args = ap.parse_args()

    records, problems = parse_jsonl(Path(args.data).read_bytes(), Path(args.data).name)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 2
    order = list(range(len(records)))
    random.Random(args.seed).shuffle(order)
    train = [records[i] for i in order[: args.train]]
    held = [records[i] for i in order[args.train:]]
    if not held:
        print("No held-out examples: lower --train.", file=sys.stderr)
        return 2
    prompts = [[m for m in r["messages"] if m["role"] != "assistant"] for r in held]
    load1 = os.getloadavg()[0]
    print(f"{len(train)} training examples, {len(held)} held-out prompts, {os.cpu_count()} CPUs, "
          f"load average {load1:.1f}", flush=True)

    import torch

    threads = args.threads or lora.pick_threads()
    torch.set_num_threads(threads)  # generation too: on a busy CPU one thread is far faster (see lora.py)
    t0 = time.perf_counter()
    base_model = lora.load_base()
    load_s = time.perf_counter() - t0
    out_dir = Path(tempfile.mkdtemp(prefix="style-lora-"))

    def progress(s: lora.StepInfo) -> None:
        if s.step == 1 or s.end_of_epoch:
            print(f"  step {s.step}/{s.total_steps} epoch {s.epoch:.2f} loss {s.train_loss:.3f} "
                  f"({s.elapsed_s:.0f} s)", flush=True)

    result = lora.train(train, out_dir, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                        on_step=progress, model=base_model, checkpoints=False, threads=threads)
    train_s = result.seconds
    del base_model
    print(f"trained {result.steps} steps in {train_s:.1f} s (+ {load_s:.1f} s loading the base model); "
          f"mean loss per epoch {[round(x, 3) for x in result.epoch_train_loss]}", flush=True)

    t1 = time.perf_counter()
    base_answers = generate(None, prompts, args.max_new_tokens)
    tuned_answers = generate(result.adapter_dir, prompts, args.max_new_tokens)
    gen_s = time.perf_counter() - t1
    base_ok = [follows_style(a) for a in base_answers]
    tuned_ok = [follows_style(a) for a in tuned_answers]
    where_base_not = [t for b, t in zip(base_ok, tuned_ok, strict=True) if not b]
    rate = lambda xs: sum(xs) / len(xs) if xs else 0.0  # noqa: E731
    figures = {
        "train_examples": len(train), "held_out": len(held), "epochs": args.epochs, "steps": result.steps,
        "train_seconds": round(train_s, 1), "base_load_seconds": round(load_s, 1),
        "generation_seconds": round(gen_s, 1), "load_average_at_start": round(load1, 1), "threads": threads,
        "load_average_at_end": round(os.getloadavg()[0], 1),
        "base_style_rate": round(rate(base_ok), 3), "tuned_style_rate": round(rate(tuned_ok), 3),
        "tuned_rate_where_base_not": round(rate(where_base_not), 3), "prompts_where_base_not": len(where_base_not),
        "epoch_train_loss": [round(x, 4) for x in result.epoch_train_loss],
    }
    print(json.dumps(figures, indent=2))
    for p, b, t in list(zip(prompts, base_answers, tuned_answers, strict=True))[:3]:
        print(f"\nQ: {p[-1]['content']}\n  base : {b.strip()[:200]}\n  tuned: {t.strip()[:200]}")
    targets = train_s <= 120 and rate(where_base_not) >= 0.8
    print(f"\ntargets (<= 120 s training, >= 80% where base does not): {'met' if targets else 'NOT met'}")
    if args.json:
        answers = [{"prompt": p[-1]["content"], "base": b, "tuned": t, "base_ok": bo, "tuned_ok": to}
                   for p, b, t, bo, to in zip(prompts, base_answers, tuned_answers, base_ok, tuned_ok, strict=True)]
        Path(args.json).write_text(json.dumps({"figures": figures, "answers": answers}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
