"""The Training data grid, seen from the engine: which rows a filter shows, and what an editor delta saves.

The page shows examples in an editable table (one row per example: its first system / first user / last
assistant message, status, split, tags). Streamlit's data editor reports the user's edits as a delta that
is *cumulative* for the editor's life: ``{"edited_rows": {pos: {col: value}}, "added_rows": [row, ...],
"deleted_rows": [pos, ...]}``. ``save_delta`` turns the part of it not saved yet into store changes, and
remembers what it saved in an ``EditorState``, so a rerun never saves the same edit twice (re-applying an old
edit would undo a later bulk action).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from rag_ft.training import dataset
from rag_ft.training.examples import SPLITS, STATUSES, Example, ExampleError, ExampleStore
from rag_ft.training.tokens import TokenizerUnavailable

PROBLEM_FILTERS = ("All", "No problem", "Any problem", "Errors", "Warnings", "Stale")
TEXT_COLS = ("system", "user", "assistant")
COLUMNS = ("id", "status", "split", "system", "user", "assistant", "problem", "tokens", "turns", "source", "tags",
           "stale")
STALE = "stale: its document chunk changed or was deleted"
SHOWN_ORDER = ("id", "status", "split", "problem", "user", "assistant", "system", "tags", "tokens", "turns", "source",
               "stale")
READ_ONLY = ("id", "problem", "tokens", "turns", "source", "stale")


def column_specs(model: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """column -> (kind, arguments) of the grid's column configuration; kind is "number", "text", "check" or
    "select" (the page maps kinds to ``st.column_config`` classes)."""
    def col(label: str, width: str = "small", **extra: Any) -> dict[str, Any]:
        return {"label": label, "width": width, **extra}

    return {"id": ("number", col("ID")),
            "status": ("select", col("Status", options=list(STATUSES), required=True)),
            "split": ("select", col("Split", options=list(SPLITS), required=True)),
            "system": ("text", col("System")), "user": ("text", col("User", "medium")),
            "assistant": ("text", col("Assistant", "large")),
            "problem": ("text", col("Problem", "medium", help="What OpenAI's rules say about this example")),
            "tokens": ("number", col("Tokens", help=f"Counted for {model}")), "turns": ("number", col("Turns")),
            "source": ("text", col("Source")), "tags": ("text", col("Tags", help="comma-separated")),
            "stale": ("check", col("Stale"))}


# ---- which rows are shown ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Filters:
    """The page's filter widgets. Empty status / split / source lists mean "any"."""

    search: str = ""
    status: tuple[str, ...] = ()
    split: tuple[str, ...] = ()
    source: tuple[str, ...] = ()
    problem: str = "All"


@dataclass
class Grid:
    rows: list[dict[str, Any]]  # one dict per shown example, keys = COLUMNS
    token_warning: str | None = None  # why the Tokens column is empty (no offline tokenizer), else None

    @property
    def ids(self) -> list[int]:
        return [r["id"] for r in self.rows]


def shows(problem_filter: str, levels: set[str], stale: bool) -> bool:
    """Whether the Validation filter keeps an example with issues of these levels ("error", "warning")."""
    rules = {"All": True, "No problem": not levels and not stale, "Any problem": bool(levels) or stale,
             "Errors": "error" in levels, "Warnings": "warning" in levels, "Stale": stale}
    if problem_filter not in rules:
        raise ValueError(f"Unknown problem filter {problem_filter!r}: use one of {', '.join(PROBLEM_FILTERS)}.")
    return rules[problem_filter]


def build(store: ExampleStore, filters: Filters, model: str) -> Grid:
    """The rows the filters show, validated (and tokens counted) for ``model``."""
    examples = store.list(status=filters.status or None, split=filters.split or None,
                          source=filters.source or None, search=filters.search)
    records = [e.record() for e in examples]
    warning = None
    try:
        report = dataset.validate(records, model=model, min_examples=0)
    except TokenizerUnavailable as exc:  # keep the grid; only the token counts are missing
        warning = f"Token counts unavailable: {exc}"
        report = dataset.validate(records, model=model, min_examples=0, count=False)
    stale = store.stale_ids()
    rows = []
    for i, e in enumerate(examples):
        is_stale = e.id in stale
        if not shows(filters.problem, {x.level for x in report.for_example(i)}, is_stale):
            continue
        problem = "; ".join(x for x in (STALE if is_stale else "", report.problem_text(i)) if x)
        rows.append({"id": e.id, "status": e.status, "split": e.split, "system": e.system, "user": e.user,
                     "assistant": e.assistant, "problem": problem, "tokens": report.token_counts[i],
                     "turns": e.turns, "source": e.source_label, "tags": ", ".join(e.tags), "stale": is_stale})
    return Grid(rows, warning)


# ---- what an edit saves --------------------------------------------------------------------------------
def row_changes(ex: Example, change: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The store fields a grid row's cells change (only what differs from ``ex``) and a label for each.

    Text cells edit the grid's view of the messages (``with_text``); an empty status / split cell changes
    nothing (the column requires a value); read-only columns are ignored.
    """
    fields: dict[str, Any] = {}
    labels: list[str] = []
    for col, value in change.items():
        value = "" if value is None else value
        if col in TEXT_COLS:
            if value != getattr(ex, col):
                # applied by the store to the row as it is inside its transaction (another process may
                # have edited another cell of this example since the grid was drawn)
                fields.setdefault("texts", {})[col] = str(value)
                labels.append(f"#{ex.id} {col}")
        elif col in ("status", "split") and value and value != getattr(ex, col):
            fields[col] = value
            labels.append(f"#{ex.id} {col} = {value}")
        elif col == "tags" and [t.strip() for t in str(value).split(",") if t.strip()] != ex.tags:
            fields["tags"] = str(value)
            labels.append(f"#{ex.id} tags")
    return fields, labels


@dataclass
class EditorState:
    """What of one editor's cumulative delta is saved already (kept in the page's session state)."""

    edited: dict[int, dict[str, Any]] = field(default_factory=dict)  # grid position -> cells as saved
    added: dict[int, dict[str, Any]] = field(default_factory=dict)  # added-row position -> row as saved
    added_ids: dict[int, int] = field(default_factory=dict)  # added-row position -> the example it became
    deleted: set[int] = field(default_factory=set)  # grid positions deleted


@dataclass
class Saved:
    labels: list[str] = field(default_factory=list)  # what was saved, in words ("#3 assistant", "2 deleted")
    ids: list[int] = field(default_factory=list)  # examples edited or added, ascending
    errors: list[str] = field(default_factory=list)  # "#3: Unknown status 'x'..." for edits the store refused
    problems: dict[int, str] = field(default_factory=dict)  # id -> format errors an edited example still has


def save_delta(store: ExampleStore, ids: Sequence[int], delta: Mapping[str, Any] | None,
               state: EditorState) -> Saved:
    """Save the part of the editor's ``delta`` that ``state`` has not seen; ``ids`` = the grid's row ids.

    Edited rows are written in one transaction (when the store refuses one, each row is tried alone so the
    others still save); an added row becomes an example once it has some text, and later edits of that row
    change the same example; deleted rows are soft-deleted.
    """
    out = Saved()
    if not isinstance(delta, Mapping):
        return out
    changed: set[int] = set()
    pending: dict[int, tuple[dict[str, Any], list[str]]] = {}
    current = {e.id: e for e in store.get_many(ids, include_deleted=True)}
    for pos, cells in (delta.get("edited_rows") or {}).items():
        pos = int(pos)
        before = state.edited.get(pos, {})
        new = {c: v for c, v in cells.items() if c not in before or before[c] != v}
        if pos >= len(ids) or not new:
            continue
        state.edited[pos] = dict(cells)
        ex = current.get(ids[pos])
        if ex is not None:
            fields, labels = row_changes(ex, new)
            if fields:
                pending[ex.id] = (fields, labels)
    _write(store, pending, out, changed)
    for pos, row in enumerate(delta.get("added_rows") or []):
        if state.added.get(pos) == row:
            continue
        if pos not in state.added_ids:
            texts = {r: (row.get(r) or "") for r in TEXT_COLS}
            if not any(texts.values()):
                continue  # an empty new row: wait until something is typed
            try:
                new_id = store.add([{"role": r, "content": t} for r, t in texts.items() if t],
                                   status=row.get("status") or "draft", split=row.get("split") or "train",
                                   tags=row.get("tags") or "")
            except ExampleError as exc:
                out.errors.append(f"new row: {exc}")
            else:
                state.added_ids[pos] = new_id
                out.labels.append(f"#{new_id} added")
                changed.add(new_id)
        elif (ex := store.get(state.added_ids[pos])) is not None:
            fields, labels = row_changes(ex, row)
            _write(store, {ex.id: (fields, labels)} if fields else {}, out, changed)
        state.added[pos] = dict(row)
    new_gone = [int(p) for p in delta.get("deleted_rows") or [] if int(p) not in state.deleted]
    state.deleted.update(new_gone)
    gone = [ids[p] for p in new_gone if p < len(ids)]
    if gone and store.delete(gone):
        out.labels.append(f"{len(gone)} deleted")
    out.ids = sorted(changed)
    for ex in store.get_many(out.ids):
        errs = dataset.format_errors(ex.record())
        if errs:
            out.problems[ex.id] = "; ".join(m for _, m in errs)
    return out


def _write(store: ExampleStore, pending: dict[int, tuple[dict[str, Any], list[str]]], out: Saved,
           changed: set[int]) -> None:
    if not pending:
        return
    try:
        store.update_many({i: f for i, (f, _) in pending.items()})
        done = list(pending)
    except ExampleError:  # one refused row: save the others alone and name the refused one
        done = []
        for i, (fields, _) in pending.items():
            try:
                store.update(i, **fields)
                done.append(i)
            except ExampleError as exc:
                out.errors.append(f"#{i}: {exc}")
    for i in done:
        out.labels += pending[i][1]
        changed.add(i)


ROLES = ("system", "user", "assistant")


def save_detail(store: ExampleStore, example_id: int, rows: Sequence[Mapping[str, Any]], tags: str,
                notes: str) -> str:
    """Save the detail editor's message rows (rows without a role are dropped), tags and notes; says what
    was saved and which format errors remain."""
    new = [{"role": r["role"], "content": r.get("content") or ""} for r in rows if r.get("role")]
    problems = dataset.format_errors({"messages": new})
    store.update(example_id, messages=new, tags=tags, notes=notes)
    return f"Saved #{example_id}." + (f" Still to fix: {'; '.join(m for _, m in problems)}." if problems else "")


def count_metrics(counts: Mapping[str, Any]) -> list[tuple[str, int]]:
    """The six numbers above the grid, as (label, value)."""
    return [("Draft", counts["status"]["draft"]), ("Approved", counts["status"]["approved"]),
            ("Rejected", counts["status"]["rejected"]), ("Train", counts["split"]["train"]),
            ("Validation", counts["split"]["validation"]), ("Deleted", counts["deleted"])]


# ---- import, and what the page says about it ------------------------------------------------------------
@dataclass
class Imported:
    name: str
    added: int
    skipped: int  # already in the store (skip_existing)
    problems: list[tuple[int, str]]  # (line number, reason) of lines that did not import
    approved: int = 0  # of the added, how many were approved on import
    left_draft: int = 0  # added with format errors: kept as drafts even when approving

    def message(self) -> str:
        """The one-line summary the page shows (without the list of bad lines)."""
        msg = f"Imported {self.added} example(s) from {self.name}"
        if self.skipped:
            msg += f"; {self.skipped} already there were skipped"
        if self.approved or self.left_draft:
            msg += f"; {self.approved} approved"
            if self.left_draft:
                msg += f", {self.left_draft} with format errors left as drafts"
        elif self.added:
            msg += " as drafts (only approved examples train: review and approve them)"
        if self.problems:
            return msg + f"; {len(self.problems)} line(s) had problems:"
        return msg + "."


def import_examples(store: ExampleStore, name: str, data: bytes, skip_existing: bool = False,
                    approve: bool = False) -> Imported:
    """Import a JSONL/CSV file's examples as drafts; with ``approve`` the ones without format errors are
    approved at once (an example the API would reject never trains, so it stays a draft to fix)."""
    result = dataset.import_file(name, data)
    ids, skipped = store.import_records(name, result.records, result.lines, skip_existing=skip_existing)
    out = Imported(name, len(ids), skipped, result.problems)
    if approve and ids:
        clean = [e.id for e in store.get_many(ids) if not dataset.format_errors(e.record())]
        out.approved = store.set_many(clean, status="approved")
        out.left_draft = len(ids) - len(clean)
    return out


def approval_note(counts: Mapping[str, Any]) -> str | None:
    """Why "0 valid examples" may appear although examples exist: only approved ones train (None: nothing to say)."""
    drafts = counts["status"]["draft"]
    if not drafts:
        return None
    return (f"Only approved examples train. {drafts} draft(s) are waiting for review: set their Status to "
            "approved in the grid, or filter them and use Approve ... shown.")


def histogram_frame(token_counts: Sequence[int | None]) -> pd.DataFrame:
    """Examples per token-length bin, indexed by an ordered category so a chart keeps the bins in numeric
    order (string labels such as "90-99" and "100-109" would otherwise sort as text)."""
    hist = dataset.histogram([c for c in token_counts if c is not None])
    labels = [label for label, _ in hist]
    index = pd.CategoricalIndex(labels, categories=labels, ordered=True, name="tokens")
    return pd.DataFrame({"examples": [n for _, n in hist]}, index=index)
