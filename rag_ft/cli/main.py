"""``python -m rag_ft`` / ``rag-ft``: the engine's command line, on the same data folder and settings as the app.

Settings come from ``.streamlit/secrets.toml`` (the user's ``~/.streamlit/`` one, then the current folder's,
which wins, as Streamlit reads them) and the environment, with the app's precedence: secrets > environment >
defaults. Exit codes: 0 ok, 1 a command or file failed (message on stderr), 2 usage error.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tomllib
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag_ft.cli.output import EXIT_FAILED, CliError, note, redact
from rag_ft.settings import Settings, SettingsError, load_settings

SECRETS_FILES = (Path.home() / ".streamlit" / "secrets.toml", Path(".streamlit") / "secrets.toml")


def read_secrets(paths: Sequence[Path] = SECRETS_FILES) -> dict[str, Any]:
    """Top-level keys of the secrets files that exist (later files win); tables are skipped, but [endpoints]."""
    out: dict[str, Any] = {}
    for path in paths:
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
            # the app goes on without a malformed secrets file; so do we, but say so
            note(f"warning: {path} could not be read ({type(exc).__name__}): check its TOML syntax; ignoring it.")
            continue
        # [endpoints.<name>] tables are kept: rag_ft.models.endpoints reads them, as from st.secrets
        out.update({k: v for k, v in data.items() if not isinstance(v, dict) or k == "endpoints"})
    return out


def cli_settings() -> Settings:
    """The settings the app would use when started from the current folder."""
    try:
        return load_settings(secrets=read_secrets())
    except SettingsError as exc:
        raise CliError(str(exc)) from exc


def build_parser() -> argparse.ArgumentParser:
    from rag_ft.cli import docs, evaluate, models, search, training, tuning

    # argparse reports usage errors on stderr with exit code 2 (EXIT_USAGE), as our own usage checks do
    parser = argparse.ArgumentParser(
        prog="rag-ft",
        description="RAG + Fine-Tuning Studio on the command line: the same data folder and settings as the app.",
        epilog="Settings: .streamlit/secrets.toml or the environment (RAG_FT_DATA_DIR, RAG_FT_PROVIDER, "
               "OPENAI_API_KEY, ...). --json prints one JSON document on stdout.",
    )
    parser.add_argument("--traceback", action="store_true", help="show the Python traceback of an unexpected error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    coll = argparse.ArgumentParser(add_help=False)
    coll.add_argument("--collection", default="default", help="document collection (default: %(default)s)")
    for module in (docs, search, evaluate, training, tuning, models):
        module.add_parsers(sub, common, coll)
    return parser


def quiet_libraries() -> None:
    """Model-loading bars and library chatter would drown our own progress lines on stderr."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TQDM_DISABLE", "1")  # e.g. transformers' GGUF conversion bar
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    for name in ("unstructured", "unstructured_inference", "pdfminer", "chromadb", "sentence_transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    quiet_libraries()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        note(f"error: {exc}")
        return exc.code
    except KeyboardInterrupt:
        note("interrupted")
        return 130
    except BrokenPipeError:  # `rag-ft docs | head`: the reader left; send the rest (and the final flush) nowhere
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except Exception as exc:  # anything else: one clear line, the traceback only on request
        if args.traceback:
            traceback.print_exc()
        note(f"error: {type(exc).__name__}: {redact(str(exc))} (--traceback shows where)")
        return EXIT_FAILED
