"""``examples import|export`` (the Training data page's import and download) and ``jobs`` (fine-tuning jobs)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag_ft.cli.output import EXIT_USAGE, CliError, note, print_json, table


def add_parsers(sub: Any, common: argparse.ArgumentParser, coll: argparse.ArgumentParser) -> None:
    from rag_ft.training.examples import SPLITS, STATUSES

    ex = sub.add_parser("examples", help="training examples: import a JSONL/CSV file, export JSONL")
    verbs = ex.add_subparsers(dest="verb", metavar="import|export")
    verbs.required = True
    p = verbs.add_parser("import", parents=[common], help="add examples from OpenAI chat JSONL or a CSV",
                         description="Bad lines are listed on stderr by number (exit 1) and the good ones "
                                     "are still imported.")
    p.add_argument("file", metavar="FILE", type=Path)
    p.add_argument("--status", choices=STATUSES, default="draft", help="status of the new examples (default: draft)")
    p.add_argument("--skip-existing", action="store_true", help="leave out examples already in the store")
    p.set_defaults(func=cmd_import)
    p = verbs.add_parser("export", parents=[common], help="write examples as OpenAI fine-tuning JSONL")
    p.add_argument("file", metavar="FILE", help="output file, or - for stdout")
    p.add_argument("--status", choices=STATUSES, default=None, help="only examples with this status")
    p.add_argument("--split", choices=SPLITS, default=None, help="only examples of this split")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("jobs", parents=[common], help="fine-tuning jobs; with an id, one job and its events")
    p.add_argument("job_id", nargs="?", metavar="JOB_ID")
    p.set_defaults(func=cmd_jobs)


def _store() -> Any:
    from rag_ft.cli.main import cli_settings
    from rag_ft.training.examples import ExampleStore

    s = cli_settings()
    s.data_dir.mkdir(parents=True, exist_ok=True)
    return ExampleStore(s.db_path)


def cmd_import(args: argparse.Namespace) -> int:
    from rag_ft.training import dataset

    if not args.file.is_file():
        raise CliError(f"{args.file}: no such file")
    result = dataset.import_file(args.file.name, args.file.read_bytes())
    store = _store()
    pairs = list(zip(result.records, result.lines, strict=True))
    skipped = 0
    if args.skip_existing:  # the same test as the page's "Import sample dataset"
        have = {str(e.messages) for e in store.list()}
        kept = [(r, n) for r, n in pairs if str(r["messages"]) not in have]
        skipped, pairs = len(pairs) - len(kept), kept
    ids = store.add_many([{"messages": r["messages"], "status": args.status, "source": "import",
                           "source_file": args.file.name, "source_line": n} for r, n in pairs]) if pairs else []
    store.close()
    problems = [{"line": n, "reason": reason} for n, reason in result.problems]
    if args.json:
        print_json({"file": str(args.file), "added": len(ids), "skipped_existing": skipped, "problems": problems})
    else:
        print(f"imported {len(ids)} example(s) from {args.file.name} as {args.status}"
              + (f"; {skipped} already in the store" if skipped else ""))
    for p in problems:
        note(f"error: {args.file.name} line {p['line']}: {p['reason']}" if p["line"] else f"error: {p['reason']}")
    return 1 if problems else 0


def cmd_export(args: argparse.Namespace) -> int:
    from rag_ft.training import dataset

    store = _store()
    examples = store.list(status=args.status, split=args.split)
    store.close()
    data = dataset.to_jsonl([e.record() for e in examples])
    if args.file == "-":
        if args.json:
            raise CliError("--json needs an output file (stdout carries the JSONL)", EXIT_USAGE)
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return 0
    out = Path(args.file)
    if out.parent and not out.parent.is_dir():
        raise CliError(f"{out.parent}: no such folder")
    out.write_bytes(data)
    if args.json:
        print_json({"file": str(out), "count": len(examples), "status": args.status, "split": args.split})
    else:
        print(f"exported {len(examples)} example(s) to {out}")
    return 0


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M") if ts else ""


def job_json(job: Any) -> dict[str, Any]:
    from dataclasses import asdict

    d = asdict(job)
    d["error"] = asdict(job.error) if job.error else None
    return d


def cmd_jobs(args: argparse.Namespace) -> int:
    from rag_ft.cli.main import cli_settings
    from rag_ft.training.backends import local
    from rag_ft.training.jobs import JobNotFound, JobStore

    s = cli_settings()
    s.data_dir.mkdir(parents=True, exist_ok=True)
    store = JobStore(s.db_path, s.data_dir)
    try:
        local.reconcile(store)  # as the Fine-tuning page does: a dead worker's job is shown failed, not running
        if args.job_id:
            try:
                job = store.get(args.job_id)
            except JobNotFound as exc:
                raise CliError(f"no job {args.job_id!r} (see `jobs`)") from exc
            events = store.events(job.id)
            if args.json:
                print_json({**job_json(job), "events": [{"created_at": e.created_at, "level": e.level,
                                                          "message": e.message} for e in events]})
                return 0
            print(f"{job.id}  {job.backend}  {job.base_model}  {job.status}  step {job.step}/{job.total_steps}")
            if job.result_model:
                print(f"model: {job.result_model}")
            if job.error:
                print(f"error: {job.error.code}: {job.error.message}")
            for e in events:
                print(f"{_when(e.created_at)}  {e.level:7s} {e.message}")
            return 0
        jobs = store.list()
    finally:
        store.close()
    if args.json:
        print_json({"jobs": [job_json(j) for j in jobs]})
        return 0
    if not jobs:
        note("no fine-tuning jobs yet")
        return 0
    print(table([[j.id, j.backend, j.base_model, j.status, _when(j.created_at),
                  f"{j.step}/{j.total_steps}" if j.total_steps else "", j.result_model or "",
                  j.error.message if j.error else ""] for j in jobs],
                ["job", "backend", "base model", "status", "created", "steps", "model", "error"]))
    return 0
