"""``models``: every model the app's pickers offer (Chat, Compare, ``ask --model``), with the endpoint serving it.

Keys are never printed: an endpoint shows the name of the secret holding its key and whether it is set.
"""

from __future__ import annotations

import argparse
from typing import Any

from rag_ft.cli.output import note, print_json, table


def add_parsers(sub: Any, common: argparse.ArgumentParser, coll: argparse.ArgumentParser) -> None:
    p = sub.add_parser("models", parents=[common], help="list every pickable model and its endpoint",
                       description="The models Chat, Compare and `ask --model` can use: local models, the "
                                   "grounding adapter, each endpoint's models and tuned models. Endpoints come "
                                   "from [endpoints.<name>] in .streamlit/secrets.toml or RAG_FT_ENDPOINTS.")
    p.add_argument("--check", action="store_true", help="ask each endpoint for its model list (health)")
    p.set_defaults(func=cmd_models)


def endpoint_rows(settings: Any, check: bool) -> list[dict[str, Any]]:
    from rag_ft.models.endpoints import all_endpoints, health, shown_url

    rows = []
    for e in all_endpoints(settings):
        row: dict[str, Any] = {"name": e.name, "base_url": shown_url(e), "key_env": e.key_env or None,
                               "key": e.key_state, "models": list(e.models) or None}
        if check:
            h = health(e)
            row.update(ok=h.ok, listed=list(h.models), problem=h.problem or None)
        rows.append(row)
    return rows


def cmd_models(args: argparse.Namespace) -> int:
    from rag_ft.cli.main import cli_settings
    from rag_ft.models.catalogue import available_models

    s = cli_settings()
    for problem in s.endpoint_problems:
        note(f"warning: {problem}")
    endpoints = endpoint_rows(s, args.check)
    urls = {e["name"]: e["base_url"] for e in endpoints}
    models = [{"label": c.label, "model": c.model, "kind": c.kind, "backend": c.backend, "endpoint": c.endpoint,
               "base_url": urls.get(c.endpoint or ""), "adapter_dir": c.adapter_dir} for c in available_models(s)]
    if args.json:
        print_json({"models": models, "endpoints": endpoints, "problems": list(s.endpoint_problems)})
        return 0
    print(table([[m["label"], m["kind"], m["endpoint"] or "local", m["base_url"] or m["adapter_dir"] or ""]
                 for m in models], ["model", "kind", "endpoint", "where"]))
    for e in endpoints:
        key = {"set": f"key {e['key_env']} set", "missing": f"key {e['key_env']} NOT set", "none": "no key"}[e["key"]]
        status = "" if not args.check else (" · ok" if e["ok"] else f" · {e['problem']}")
        note(f"endpoint {e['name']}: {e['base_url']} · {key}{status}")
    return 0
