"""The training-example store: one row per fine-tuning example, in the app's SQLite file.

An example is a list of chat messages in OpenAI's fine-tuning format plus review fields (status,
split, tags, notes) and where it came from (typed by hand, an imported file + line, a document chunk,
a chat answer). Every change is its own transaction, so a reload or a crash loses nothing; delete is
soft (``deleted_at``) so anything deleted can be restored.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rag_ft.db import connect, transaction
from rag_ft.index import chunks
from rag_ft.training.example import (  # noqa: F401  (re-exported: the store's callers import them from here)
    EDITABLE,
    SOURCES,
    SPLITS,
    STATUSES,
    Example,
    ExampleError,
    check_fields,
    clean_tags,
    now,
    row_to_example,
    search_text,
    with_text,
)


class ExampleStore:
    """CRUD over the ``examples`` table. Cheap to construct; each call opens its own short transaction."""

    def __init__(self, db_path: Path | str) -> None:
        self.db_path = Path(db_path)
        self.conn = connect(self.db_path)  # the examples table exists: connect applies the migrations

    # ---- writes -------------------------------------------------------------------------------
    def add(self, messages: list[dict[str, Any]], status: str = "draft", split: str = "train",
            source: str = "manual", tags: Iterable[str] | str | None = None, notes: str = "",
            **provenance: Any) -> int:
        """Insert one example and return its id. ``provenance``: source_file, source_line, document, ..."""
        return self.add_many([dict(messages=messages, status=status, split=split, source=source,
                                   tags=tags, notes=notes, **provenance)])[0]

    def add_many(self, rows: Sequence[dict[str, Any]]) -> list[int]:
        """Insert many examples in ONE transaction (an import is all-or-nothing at the database level)."""
        ids: list[int] = []
        stamp = now()
        with transaction(self.conn):
            for r in rows:
                r = dict(r)
                r.setdefault("status", "draft")
                r.setdefault("split", "train")
                r.setdefault("source", "manual")
                unknown = set(r) - set(EDITABLE)
                if unknown:
                    raise ExampleError(f"Unknown example field(s): {', '.join(sorted(unknown))}.")
                check_fields(r)
                tags = clean_tags(r.pop("tags", None))
                notes = r.pop("notes", "") or ""
                messages = r.pop("messages")
                cols = ["messages", "tags", "notes", "search_text", "created_at", "updated_at", *r]
                vals = [json.dumps(messages, ensure_ascii=False), json.dumps(tags), notes,
                        search_text(messages, tags, notes), stamp, stamp, *r.values()]
                cur = self.conn.execute(
                    f"INSERT INTO examples ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", vals)
                ids.append(int(cur.lastrowid))
        return ids

    def update(self, example_id: int, **fields: Any) -> Example:
        """Change fields of one example in one transaction; returns the saved example.

        ``texts={"user": "...", "assistant": "..."}`` edits the grid's view of the messages (``with_text``)
        on the row as it is INSIDE the transaction, so two processes editing different cells of the same
        example both keep their edit (a read outside the transaction would let one write back a stale copy).
        """
        unknown = set(fields) - set(EDITABLE) - {"texts"}
        if unknown:
            raise ExampleError(f"Unknown example field(s): {', '.join(sorted(unknown))}.")
        check_fields(fields)
        with transaction(self.conn):
            return self._write(example_id, dict(fields))

    def update_many(self, changes: Mapping[int, Mapping[str, Any]]) -> list[Example]:
        """Change several examples (``{id: {field: value}}``) in ONE transaction: all are saved, or none."""
        for fields in changes.values():
            unknown = set(fields) - set(EDITABLE) - {"texts"}
            if unknown:
                raise ExampleError(f"Unknown example field(s): {', '.join(sorted(unknown))}.")
            check_fields(dict(fields))
        with transaction(self.conn):
            return [self._write(int(i), dict(f)) for i, f in changes.items() if f]

    def _write(self, example_id: int, fields: dict[str, Any]) -> Example:
        """The UPDATE of ``update``; the caller holds the transaction and has checked the fields."""
        row = self.conn.execute("SELECT * FROM examples WHERE id = ?", (example_id,)).fetchone()
        if row is None:
            raise ExampleError(f"No example with id {example_id}.")
        ex = row_to_example(row)
        texts = fields.pop("texts", None) or {}
        for role, text in texts.items():  # read-modify-write of the messages, on the row read just above
            fields["messages"] = ex.messages = with_text(ex.messages, role, "" if text is None else str(text))
        if "tags" in fields:
            fields["tags"] = clean_tags(fields["tags"])
        for k, v in fields.items():
            setattr(ex, k, v)
        sets = {k: v for k, v in fields.items() if k not in ("messages", "tags")}
        sets["messages"] = json.dumps(ex.messages, ensure_ascii=False)
        sets["tags"] = json.dumps(ex.tags)
        sets["search_text"] = search_text(ex.messages, ex.tags, ex.notes)
        sets["updated_at"] = ex.updated_at = now()
        self.conn.execute(
            f"UPDATE examples SET {', '.join(f'{k} = ?' for k in sets)} WHERE id = ?",
            [*sets.values(), example_id])
        return ex

    def set_text(self, example_id: int, role: str, text: str) -> Example:
        """Edit the grid's view of an example: the first system / first user / last assistant message.

        A missing message of that role is added (a system message goes first), so typing into an empty
        cell does what it looks like.
        """
        if role not in ("system", "user", "assistant"):
            raise ExampleError(f"Unknown role {role!r}.")
        return self.update(example_id, texts={role: text})

    def set_many(self, ids: Iterable[int], **fields: Any) -> int:
        """Bulk change (approve, reject, move to validation...) in one transaction; returns rows changed."""
        allowed = {"status", "split"}
        if set(fields) - allowed:
            raise ExampleError("Bulk changes can set only status and split.")
        check_fields(fields)
        ids = list(ids)
        if not ids or not fields:
            return 0
        stamp = now()
        with transaction(self.conn):
            n = 0
            for i in ids:
                cur = self.conn.execute(
                    f"UPDATE examples SET {', '.join(f'{k} = ?' for k in fields)}, updated_at = ? "
                    "WHERE id = ? AND deleted_at IS NULL", [*fields.values(), stamp, i])
                n += cur.rowcount
        return n

    def delete(self, ids: Iterable[int] | int) -> int:
        """Soft delete: the rows stay and ``restore`` brings them back."""
        return self._mark_deleted(ids, now())

    def restore(self, ids: Iterable[int] | int) -> int:
        return self._mark_deleted(ids, None)

    def _mark_deleted(self, ids: Iterable[int] | int, value: str | None) -> int:
        ids = [ids] if isinstance(ids, int) else list(ids)
        stamp = now()
        with transaction(self.conn):
            n = 0
            for i in ids:
                cond = "deleted_at IS NULL" if value else "deleted_at IS NOT NULL"
                n += self.conn.execute(f"UPDATE examples SET deleted_at = ?, updated_at = ? WHERE id = ? AND {cond}",
                                       (value, stamp, int(i))).rowcount
        return n

    def hold_out(self, fraction: float = 0.2, seed: int = 0) -> tuple[list[int], list[int]]:
        """Re-split the approved examples: a reproducible ``fraction`` (``dataset.validation_ids``) to validation,
        the rest to train, in ONE transaction (a crash never leaves half of them moved). Returns (validation
        ids, train ids)."""
        from rag_ft.training.dataset import validation_ids

        stamp = now()
        with transaction(self.conn):
            ids = [r["id"] for r in self.conn.execute(
                "SELECT id FROM examples WHERE status = 'approved' AND deleted_at IS NULL ORDER BY id")]
            held = validation_ids(ids, fraction, seed)
            held_set = set(held)
            for i in ids:
                split = "validation" if i in held_set else "train"
                self.conn.execute("UPDATE examples SET split = ?, updated_at = ? WHERE id = ? AND split != ?",
                                  (split, stamp, i, split))
        return held, [i for i in ids if i not in held_set]

    def find_duplicates(self, records: Sequence[dict[str, Any]]) -> list[int]:
        """Positions in ``records`` whose messages a live example already has (the same rule as the
        ``duplicate`` warning of ``dataset.validate``: ``dataset.record_key``)."""
        from rag_ft.training.dataset import record_key

        have = {record_key({"messages": json.loads(r["messages"])})
                for r in self.conn.execute("SELECT messages FROM examples WHERE deleted_at IS NULL")}
        return [n for n, rec in enumerate(records) if record_key(rec) in have]

    def import_records(self, name: str, records: Sequence[dict[str, Any]], lines: Sequence[int],
                       skip_existing: bool = False) -> tuple[list[int], int]:
        """Add parsed file records (source "import", with file name and line) in one transaction.

        ``skip_existing`` leaves out records the store already has. Returns (new ids, number skipped).
        """
        skip = set(self.find_duplicates(records)) if skip_existing else set()
        rows = [{"messages": r["messages"], "source": "import", "source_file": name, "source_line": n}
                for k, (r, n) in enumerate(zip(records, lines, strict=True)) if k not in skip]
        return (self.add_many(rows) if rows else []), len(skip)

    # ---- reads --------------------------------------------------------------------------------
    def get_many(self, ids: Iterable[int], include_deleted: bool = False) -> list[Example]:
        """The examples with these ids, in the order given (missing ones left out), in one query."""
        ids = [int(i) for i in ids]
        if not ids:
            return []
        found: dict[int, Example] = {}
        for start in range(0, len(ids), 500):  # SQLite caps the number of ? in one statement
            part = ids[start:start + 500]
            sql = f"SELECT * FROM examples WHERE id IN ({', '.join('?' * len(part))})"
            if not include_deleted:
                sql += " AND deleted_at IS NULL"
            found.update((r["id"], row_to_example(r)) for r in self.conn.execute(sql, part))
        return [found[i] for i in ids if i in found]

    def get(self, example_id: int) -> Example | None:
        row = self.conn.execute("SELECT * FROM examples WHERE id = ?", (int(example_id),)).fetchone()
        return row_to_example(row) if row else None

    def list(self, status: str | Sequence[str] | None = None, split: str | Sequence[str] | None = None,
             search: str | None = None, include_deleted: bool = False, source: str | Sequence[str] | None = None,
             deleted_only: bool = False) -> list[Example]:
        """Examples in id order; ``search`` matches any message text, tag or note (case-insensitive)."""
        where, args = [], []
        for col, val in (("status", status), ("split", split), ("source", source)):
            if val:
                vals = [val] if isinstance(val, str) else list(val)
                where.append(f"{col} IN ({', '.join('?' * len(vals))})")
                args.extend(vals)
        if deleted_only:
            where.append("deleted_at IS NOT NULL")
        elif not include_deleted:
            where.append("deleted_at IS NULL")
        if search and search.strip():
            # instr, not LIKE: % and _ in what the user typed are literal
            where.append("instr(search_text, ?) > 0")
            args.append(search.strip().lower())
        sql = "SELECT * FROM examples" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id"
        return [row_to_example(r) for r in self.conn.execute(sql, args)]

    def counts(self) -> dict[str, Any]:
        """{"total", "deleted", "status": {draft: n, ...}, "split": {...}, "approved": {train: n, validation: n}}."""
        out: dict[str, Any] = {"status": dict.fromkeys(STATUSES, 0), "split": dict.fromkeys(SPLITS, 0),
                               "approved": dict.fromkeys(SPLITS, 0), "total": 0, "deleted": 0}
        for row in self.conn.execute(
                "SELECT status, split, deleted_at IS NOT NULL AS del, COUNT(*) AS n FROM examples "
                "GROUP BY status, split, del"):
            if row["del"]:
                out["deleted"] += row["n"]
                continue
            out["total"] += row["n"]
            out["status"][row["status"]] = out["status"].get(row["status"], 0) + row["n"]
            out["split"][row["split"]] = out["split"].get(row["split"], 0) + row["n"]
            if row["status"] == "approved":
                out["approved"][row["split"]] += row["n"]
        return out

    def stale_ids(self) -> set[int]:
        """Generated examples whose source chunk is gone: its document was deleted, or changed so that
        no chunk of it has the hash the example was generated from any more."""
        rows = self.conn.execute(
            "SELECT id, collection, document_id, document, chunk_hash FROM examples "
            "WHERE source = 'generated' AND deleted_at IS NULL AND chunk_hash != ''").fetchall()
        return {r["id"] for r in rows
                if not chunks.exists(self.conn, r["chunk_hash"], r["document_id"], r["collection"], r["document"])}

    # ---- other pages ----------------------------------------------------------------------------
    def add_from_chat(self, question: str, answer: str, passages: Sequence[Any] = (),
                      system: str | None = None, notes: str = "") -> int:
        """A chat answer (thumbs-up, edited, or thumbs-down to fix) becomes a draft example (source "chat").

        The user turn is the question as the user typed it, not the RAG prompt the chat built around it: that
        is what the example asks, and what a reviewer must read in the Training data grid. The passages the
        answer drew on are named in the notes (document, pages, section) so the reviewer can check it against
        them; ``notes`` (e.g. what a thumbs-down said was wrong) come first.
        """
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        sources = []
        for p in passages:
            where = ", ".join(str(x) for x in (getattr(p, "document", ""), getattr(p, "page_label", ""),
                                               getattr(p, "section", "")) if x)
            if where and where not in sources:
                sources.append(where)
        origin = "From a chat answer" + ("; passages from " + "; ".join(sources) if sources else "")
        document = next((str(p.document) for p in passages if getattr(p, "document", "")), "")
        return self.add(messages, status="draft", source="chat", notes=f"{notes}\n{origin}" if notes else origin,
                        document=document)

    def close(self) -> None:
        self.conn.close()
