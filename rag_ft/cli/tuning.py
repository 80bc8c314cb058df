"""``train`` (a job bundle's entry point), ``bundle``, ``export`` (serve a tuned model elsewhere) and ``import-adapter``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rag_ft.cli.output import CliError, note, print_json


def add_parsers(sub: Any, common: argparse.ArgumentParser, coll: argparse.ArgumentParser) -> None:
    p = sub.add_parser("train", parents=[common], help="train a LoRA adapter from a job bundle's job.json",
                       description="The bundle entry point: one process on CPU or a GPU, or several GPUs under "
                                   "`accelerate launch -m rag_ft train --config job.json --out DIR`.")
    p.add_argument("--config", required=True, type=Path, metavar="JOB_JSON")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="adapter folder to write")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("bundle", parents=[common], help="write a job bundle to train on a bigger machine",
                       description="From a job's frozen data and hyperparameters (--job), else from the approved "
                                   "examples of the Training data page with the local defaults.")
    p.add_argument("dir", type=Path, metavar="DIR")
    p.add_argument("--job", metavar="JOB_ID", default=None)
    p.set_defaults(func=cmd_bundle)

    p = sub.add_parser("export", parents=[common], help="export a succeeded local job for vLLM, Ollama, llama.cpp",
                       description="Writes adapter/, merged/ (safetensors), base/, a Modelfile and a README with "
                                   "the serving commands; GGUF files too when llama.cpp's converter is found "
                                   "(LLAMA_CPP_DIR or PATH).")
    p.add_argument("job_id", metavar="JOB_ID", help="a local job id, or an adapter folder")
    p.add_argument("dir", type=Path, metavar="DIR", help="new (or empty) folder to write")
    p.add_argument("--name", default=None, help="served model name (default: the job's model name)")
    p.add_argument("--no-base", action="store_true", help="leave out base/ (vLLM --enable-lora and llama.cpp "
                                                          "--lora then need the base from elsewhere)")
    p.add_argument("--no-merge", action="store_true", help="only the adapter, Modelfile and README (fast)")
    p.add_argument("--no-gguf", action="store_true", help="do not run llama.cpp's converter even when found")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("import-adapter", parents=[common], help="register an adapter folder trained elsewhere",
                       description="Checks the base model, rank and files, copies the folder into the data folder "
                                   "and lists it as a tuned model in Chat and Compare.")
    p.add_argument("folder", type=Path, metavar="FOLDER")
    p.add_argument("--name", default=None, help="tuned model name (default: base-suffix-id)")
    p.set_defaults(func=cmd_import_adapter)


def _job_store() -> Any:
    from rag_ft.cli.main import cli_settings
    from rag_ft.training.jobs import JobStore

    s = cli_settings()
    s.data_dir.mkdir(parents=True, exist_ok=True)
    return JobStore(s.db_path, s.data_dir)


def cmd_train(args: argparse.Namespace) -> int:
    from rag_ft.training import bundle, lora

    def progress(s: lora.StepInfo) -> None:
        note(f"step {s.step}/{s.total_steps}: loss {s.train_loss:.4f}"
             + (f", validation loss {s.valid_loss:.4f}" if s.valid_loss is not None else ""))

    try:
        result = bundle.run_config(args.config, args.out, on_step=None if args.json else progress)
    except (bundle.BundleError, lora.TrainingError) as exc:
        raise CliError(str(exc)) from exc
    if args.json:
        print_json({"adapter_dir": result.adapter_dir, "steps": result.steps, "seconds": round(result.seconds, 1),
                    "final_train_loss": result.final_train_loss, "final_valid_loss": result.final_valid_loss})
    else:
        print(f"adapter written to {result.adapter_dir} ({result.steps} steps, {result.seconds:.0f} s); "
              f"bring it back with: python -m rag_ft import-adapter {result.adapter_dir}")
    return 0


def cmd_bundle(args: argparse.Namespace) -> int:
    from rag_ft.training import bundle
    from rag_ft.training.jobs import JobNotFound
    from rag_ft.training.launch import approved_records

    store = _job_store()
    try:
        if args.job:
            path = bundle.bundle_from_job(store, args.job, args.dir)
        else:
            train, valid = approved_records(store.db_path)
            path = bundle.make_bundle(args.dir, train, valid)
    except JobNotFound as exc:
        raise CliError(f"no job {args.job!r} (see `jobs`)") from exc
    except bundle.BundleError as exc:
        raise CliError(str(exc)) from exc
    finally:
        store.close()
    if args.json:
        print_json({"config": str(path)})
    else:
        print(f"bundle written: {path}; on the training machine: python -m rag_ft train --config job.json --out adapter")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from rag_ft.training import export

    options = {"include_base": not args.no_base, "merge": not args.no_merge, "gguf": not args.no_gguf}
    note(f"exporting to {args.dir} (merging writes about 1 GB and takes a minute)" if not args.no_merge else
         f"exporting to {args.dir}")
    try:
        if Path(args.job_id).is_dir():
            result = export.export_adapter(args.job_id, args.dir, name=args.name or Path(args.job_id).name, **options)
        else:
            store = _job_store()
            try:
                result = export.export_job(store, args.job_id, args.dir, name=args.name, **options)
            finally:
                store.close()
    except export.ExportError as exc:
        raise CliError(str(exc)) from exc
    if args.json:
        from dataclasses import asdict

        print_json(asdict(result))
        return 0
    print(f"exported {result.name} to {result.folder}: {len(result.files)} files; GGUF: "
          + (", ".join(result.gguf) if result.gguf else result.gguf_note))
    print(f"serving commands: {Path(result.folder) / 'README.md'}")
    return 0


def cmd_import_adapter(args: argparse.Namespace) -> int:
    from rag_ft.training import bundle

    store = _job_store()
    try:
        tuned = bundle.import_adapter(store, args.folder, args.name)
    except bundle.BundleError as exc:
        raise CliError(str(exc)) from exc
    finally:
        store.close()
    if args.json:
        print_json({"name": tuned.name, "job_id": tuned.job_id, "adapter_dir": tuned.adapter_dir})
    else:
        print(f"imported {args.folder} as tuned model {tuned.name} (job {tuned.job_id}): pick \"{tuned.name} (LoRA)\" "
              "in Chat or Compare")
    return 0
