"""The command line (``python -m rag_ft``, ``rag-ft``): one module per command group, argparse in ``main``."""

from rag_ft.cli.main import main

__all__ = ["main"]
