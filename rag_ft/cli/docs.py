"""``index FILE...``, ``docs``, ``delete NAME``: the Documents page's operations.

A document is named by its file name within a collection, as when it is uploaded in the app, so the app and
the command line see (and update) the same documents.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rag_ft.cli.output import CliError, Progress, note, print_json, table


def add_parsers(sub: Any, common: argparse.ArgumentParser, coll: argparse.ArgumentParser) -> None:
    p = sub.add_parser("index", parents=[common, coll], help="index files (a folder: its supported files)",
                       description="Parse, chunk, embed and store files. An unchanged file is skipped; a changed "
                                   "one replaces its passages. Exit 1 when any file failed (the others are kept).")
    p.add_argument("files", nargs="+", metavar="FILE", type=Path)
    p.set_defaults(func=cmd_index)
    p = sub.add_parser("docs", parents=[common, coll], help="list the documents of a collection")
    p.set_defaults(func=cmd_docs)
    p = sub.add_parser("delete", parents=[common, coll], help="remove a document (passages, vectors, stored file)")
    p.add_argument("name", metavar="NAME", help="the document's name, as `docs` lists it")
    p.set_defaults(func=cmd_delete)


def collect_files(paths: list[Path]) -> tuple[list[Path], list[str]]:
    """Files to index (folders expanded, recursively, to the files the ingestion supports) and problems."""
    from rag_ft.ingest import supported

    files, problems = [], []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")
                           and supported(p.name) and p.suffix.lower() != ".jsonl")
            if not found:
                problems.append(f"{path}: no supported files in this folder")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            problems.append(f"{path}: no such file")
    return files, problems


def cmd_index(args: argparse.Namespace) -> int:
    from rag_ft.cli.main import cli_settings
    from rag_ft.index.documents import index_files
    from rag_ft.index.vectors import IndexProblem
    from rag_ft.models.providers import get_embeddings

    paths, problems = collect_files(args.files)
    for problem in problems:
        note(f"error: {problem}")
    items: list[tuple[str, bytes]] = []
    seen: dict[str, Path] = {}
    for path in paths:
        if path.name in seen:  # documents are named by file name: a second one would replace the first
            problems.append(f"{path}: same name as {seen[path.name]}; skipped")
            note(f"error: {problems[-1]}")
            continue
        seen[path.name] = path
        items.append((path.name, path.read_bytes()))
    if not items:
        raise CliError("nothing to index")
    s = cli_settings()
    note(f"indexing {len(items)} file(s) into collection '{args.collection}' ({s.data_dir})")
    bar = Progress("index")
    try:
        outcomes = index_files(s, get_embeddings(s), items, collection=args.collection, progress=bar.update)
    except IndexProblem as exc:  # another embedding model, or the Chroma server cannot be reached
        raise CliError(str(exc)) from exc
    failed = [o for o in outcomes if o.status == "failed"]
    bar.done(f"{len(outcomes) - len(failed)} ok, {len(failed)} failed")
    if args.json:
        print_json({"collection": args.collection, "files": [asdict(o) for o in outcomes],
                    "problems": problems})
    else:
        print(table([[o.status, o.name, o.message + (f" ({'; '.join(o.warnings)})" if o.warnings else "")]
                     for o in outcomes], ["status", "document", "result"]))
    for o in failed:
        note(f"error: {o.name}: {o.error}")
    return 1 if failed or problems else 0


def cmd_docs(args: argparse.Namespace) -> int:
    from rag_ft.cli.main import cli_settings
    from rag_ft.index.documents import list_documents

    s = cli_settings()
    docs = list_documents(s, args.collection)
    if args.json:
        print_json({"collection": args.collection, "data_dir": str(s.data_dir),
                    "documents": [asdict(d) for d in docs]})
        return 0
    if not docs:
        note(f"no documents in collection '{args.collection}' ({s.data_dir})")
        return 0
    print(table([[d.name, d.status, str(d.pages or "-"), str(d.chunk_count), d.indexed_at[:19], d.error]
                 for d in docs], ["document", "status", "pages", "chunks", "indexed at", "error"]))
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from rag_ft.cli.main import cli_settings
    from rag_ft.index.documents import delete_document

    s = cli_settings()
    if not delete_document(s, args.name, args.collection):
        raise CliError(f"no document named {args.name!r} in collection '{args.collection}' (see `docs`)")
    if args.json:
        print_json({"collection": args.collection, "name": args.name, "deleted": True})
    else:
        print(f"deleted {args.name}")
    return 0
