"""``python -m rag_ft``: the command line (see ``rag_ft.cli``)."""

from rag_ft.cli.main import main

raise SystemExit(main())
