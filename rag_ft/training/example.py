"""One training example: its record (OpenAI chat messages plus review fields and provenance), the values its
fields may take, and the grid's view of its messages. The store (``rag_ft.training.examples``) persists it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

STATUSES = ("draft", "approved", "rejected")
SPLITS = ("train", "validation")
SOURCES = ("manual", "import", "generated", "chat")

EDITABLE = ("messages", "status", "split", "tags", "notes", "source", "source_file", "source_line",
            "collection", "document_id", "document", "chunk_id", "chunk_hash", "section")


class ExampleError(ValueError):
    """A field value the store refuses (unknown status, split, ...); the message says which."""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class Example:
    id: int
    messages: list[dict[str, Any]]
    status: str = "draft"
    split: str = "train"
    source: str = "manual"
    source_file: str = ""
    source_line: int | None = None
    collection: str = ""
    document_id: str = ""
    document: str = ""
    chunk_id: str = ""
    chunk_hash: str = ""
    section: str = ""
    tags: list[str] = field(default_factory=list)
    notes: str = ""
    created_at: str = ""
    updated_at: str = ""
    deleted_at: str | None = None

    def record(self) -> dict[str, Any]:
        """The example as one line of an OpenAI fine-tuning JSONL file."""
        return {"messages": self.messages}

    def _first(self, role: str, last: bool = False) -> str:
        found = [m for m in self.messages if isinstance(m, dict) and m.get("role") == role]
        if not found:
            return ""
        content = (found[-1] if last else found[0]).get("content")
        return content if isinstance(content, str) else ""

    @property
    def system(self) -> str:
        return self._first("system")

    @property
    def user(self) -> str:
        return self._first("user")

    @property
    def assistant(self) -> str:
        """The final assistant turn (what a single-turn example teaches)."""
        return self._first("assistant", last=True)

    @property
    def turns(self) -> int:
        """Number of user turns; more than 1 means the grid shows only the first user / last answer."""
        return sum(1 for m in self.messages if isinstance(m, dict) and m.get("role") == "user")

    @property
    def source_label(self) -> str:
        if self.source == "import":
            return f"import: {self.source_file}" + (f" line {self.source_line}" if self.source_line else "")
        if self.source == "generated":
            return f"generated: {self.document}" + (f" #{self.chunk_hash[:8]}" if self.chunk_hash else "")
        return self.source


def search_text(messages: Any, tags: Sequence[str], notes: str) -> str:
    parts: list[str] = []
    if isinstance(messages, list):
        for m in messages:
            if isinstance(m, dict) and isinstance(m.get("content"), str):
                parts.append(m["content"])
    parts.extend(tags)
    parts.append(notes)
    return "\n".join(parts).lower()


def row_to_example(row: Any) -> Example:
    d = dict(row)
    d.pop("search_text", None)
    d["messages"] = json.loads(d["messages"])
    d["tags"] = json.loads(d["tags"] or "[]")
    return Example(**d)


def clean_tags(tags: Any) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = tags.split(",")
    return [t.strip() for t in tags if str(t).strip()]


def with_text(messages: Sequence[Any], role: str, text: str) -> list[Any]:
    """A copy of ``messages`` with the grid's view of ``role`` set to ``text``: the first system / first user /
    last assistant message. A missing message of that role is added (a system message goes first), so typing
    into an empty cell does what it looks like."""
    if role not in ("system", "user", "assistant"):
        raise ExampleError(f"Unknown role {role!r}.")
    messages = [dict(m) if isinstance(m, dict) else m for m in messages]
    idx = [i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == role]
    if idx:
        messages[idx[-1] if role == "assistant" else idx[0]]["content"] = text
    elif role == "system":
        messages.insert(0, {"role": "system", "content": text})
    elif role == "user":
        pos = 1 if messages and isinstance(messages[0], dict) and messages[0].get("role") == "system" else 0
        messages.insert(pos, {"role": "user", "content": text})
    else:
        messages.append({"role": "assistant", "content": text})
    return messages


def check_fields(fields: dict[str, Any]) -> None:
    if "status" in fields and fields["status"] not in STATUSES:
        raise ExampleError(f"Unknown status {fields['status']!r}: use one of {', '.join(STATUSES)}.")
    if "split" in fields and fields["split"] not in SPLITS:
        raise ExampleError(f"Unknown split {fields['split']!r}: use one of {', '.join(SPLITS)}.")
    if "source" in fields and fields["source"] not in SOURCES:
        raise ExampleError(f"Unknown source {fields['source']!r}: use one of {', '.join(SOURCES)}.")
    if "messages" in fields and not isinstance(fields["messages"], list):
        raise ExampleError("messages must be a list of {role, content} dicts.")
