"""Elements -> chunks that keep structure: sections stay together, tables stay whole where they fit.

``chunk_by_title`` starts a new chunk at each title, isolates tables in their own chunks and splits
them only when they exceed ``max_characters``. Each chunk keeps its original elements, so the page
list is EVERY page the chunk spans (a section running over a page break cites both pages), not only the
first one, and the section is the nearest title at or above the chunk's start.
"""

from __future__ import annotations

from typing import Any

from rag_ft.records import Chunk

TITLE_TYPES = {"Title"}


def _section_of(element: Any) -> str | None:
    """A title element's text, or a sheet name for spreadsheets (they have no titles)."""
    if type(element).__name__ in TITLE_TYPES:
        return " ".join(element.text.split())[:200]
    return None


def chunk_elements(
    elements: list[Any], document: str, *, max_characters: int = 1500, fallback_section: str = ""
) -> list[Chunk]:
    from unstructured.chunking.title import chunk_by_title

    elements = [e for e in elements if e.text and e.text.strip()]
    if not elements:
        return []
    raw = chunk_by_title(
        elements,
        max_characters=max_characters,
        new_after_n_chars=max_characters,
        combine_text_under_n_chars=max(1, max_characters // 6),  # glue a lone title or one-liner to the next
        multipage_sections=True,
        include_orig_elements=True,
    )
    chunks: list[Chunk] = []
    section = fallback_section
    for c in raw:
        text = c.text.strip()
        if not text:
            continue
        origs = list(getattr(c.metadata, "orig_elements", None) or [])
        start_section = section
        for i, e in enumerate(origs):
            title = _section_of(e)
            if title:
                if i == 0:
                    start_section = title
                section = title
            elif i == 0 and getattr(e.metadata, "page_name", None):
                start_section = section = str(e.metadata.page_name)  # spreadsheet sheet
        pages = sorted({e.metadata.page_number for e in origs if e.metadata.page_number})
        types: list[str] = []
        for e in origs or [c]:
            name = type(e).__name__
            if name not in types:
                types.append(name)
        chunks.append(Chunk(text=text, document=document, chunk_index=0, pages=pages,
                            section=start_section, element_types=types))
    return _number(_glue_lone_titles(chunks, max_characters))


def _glue_lone_titles(chunks: list[Chunk], max_characters: int) -> list[Chunk]:
    """chunk_by_title isolates tables, so a heading or caption right above a table ends up alone in a
    chunk of one line: give it to the chunk that follows (the table) when both fit."""
    out: list[Chunk] = []
    for c in chunks:
        prev = out[-1] if out else None
        lead = prev is not None and len(prev.text) <= 200 and (
            prev.element_types == ["Title"] or (prev.element_types == ["Text"] and "Table" in c.element_types)
        )  # a lone heading, or a one-line caption above a table
        if prev is not None and lead and len(prev.text) + 2 + len(c.text) <= max_characters:
            types = [*prev.element_types, *[t for t in c.element_types if t not in prev.element_types]]
            out[-1] = Chunk(text=f"{prev.text}\n\n{c.text}", document=c.document, chunk_index=0,
                            pages=sorted(set(prev.pages) | set(c.pages)), section=prev.section,
                            element_types=types)
        else:
            out.append(c)
    return out


def _number(chunks: list[Chunk]) -> list[Chunk]:
    for i, c in enumerate(chunks):
        c.chunk_index = i
    return chunks
