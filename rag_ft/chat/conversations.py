"""Chat conversations kept in the data folder, so a browser reload does not lose them.

The Chat page keeps a conversation id in its URL (``?c=<id>``); every change to the conversation is saved
under that id, and a page opened with the id (a reload, a bookmark) loads it back. A message is the page's
dict: ``role`` and ``content``, and for answers the ``AnswerResult`` (sources, timings) plus what the user did
with it (rating, the training example it was sent as, an edit). Results are stored as plain JSON, rebuilt
into the same dataclasses on load, so the page draws a restored answer exactly like a fresh one.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag_ft.chat.chain import AnswerResult
from rag_ft.chat.citations import Citation
from rag_ft.db import connect, transaction
from rag_ft.records import Passage

# What an id in the URL may look like: the query string is typed by anyone, so anything else starts afresh.
_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


def new_conversation_id() -> str:
    """A fresh id for the URL: random, so one conversation's URL does not lead to another's."""
    return secrets.token_urlsafe(12)


def valid_conversation_id(value: object) -> bool:
    return isinstance(value, str) and bool(_ID.match(value))


def _passage(d: dict[str, Any]) -> Passage:
    return Passage(**{**d, "pages": list(d.get("pages") or []), "scores": dict(d.get("scores") or {})})


def result_to_dict(result: AnswerResult) -> dict[str, Any]:
    """An answer as JSON-ready data (``result_from_dict`` gives it back)."""
    return asdict(result)


def result_from_dict(data: dict[str, Any]) -> AnswerResult:
    d = dict(data)
    d["passages"] = [_passage(p) for p in d.get("passages") or []]
    d["citations"] = [Citation(**{**c, "passage": _passage(c["passage"])}) for c in d.get("citations") or []]
    return AnswerResult(**d)


def _dump(messages: Sequence[dict[str, Any]]) -> str:
    out = []
    for m in messages:
        m = dict(m)
        if isinstance(m.get("result"), AnswerResult):
            m["result"] = result_to_dict(m["result"])
        out.append(m)
    return json.dumps(out, ensure_ascii=False)


def _load(text: str) -> list[dict[str, Any]]:
    out = []
    for m in json.loads(text):
        if isinstance(m.get("result"), dict):
            m["result"] = result_from_dict(m["result"])
        out.append(m)
    return out


class ConversationStore:
    """The ``conversations`` table: one row per conversation, its messages as JSON."""

    def __init__(self, db_path: Path | str) -> None:
        self.conn = connect(db_path)  # connect applies the migrations: the table exists

    def load(self, conversation_id: str) -> list[dict[str, Any]]:
        """The conversation's messages ([] for an unknown id)."""
        row = self.conn.execute("SELECT messages FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
        return _load(row["messages"]) if row else []

    def save(self, conversation_id: str, messages: Sequence[dict[str, Any]]) -> None:
        """Replace the conversation's messages (created on first save)."""
        if not valid_conversation_id(conversation_id):
            raise ValueError(f"not a conversation id: {conversation_id!r}")
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        with transaction(self.conn):
            self.conn.execute(
                "INSERT INTO conversations (id, messages, created_at, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET messages = excluded.messages, updated_at = excluded.updated_at",
                (conversation_id, _dump(messages), now, now))

    def ids(self) -> list[str]:
        """Every stored conversation, most recently changed first."""
        return [r[0] for r in self.conn.execute("SELECT id FROM conversations ORDER BY updated_at DESC")]

    def close(self) -> None:
        self.conn.close()
