"""Tiny chat datasets for the fine-tuning tests."""

from __future__ import annotations

import json


def style_records(n: int = 6) -> list[dict]:
    return [{"messages": [
        {"role": "system", "content": "Answer from the context and cite the source."},
        {"role": "user", "content": f"Context: Rule {i} says staff get {i + 2} days.\nQuestion: what does rule {i} say?"},
        {"role": "assistant", "content": f"Rule {i} gives staff {i + 2} days. [Source: handbook.pdf, Section {i}.1]"},
    ]} for i in range(n)]


def jsonl(records: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()
