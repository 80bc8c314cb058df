from rag_ft.ingest.unstructured_offline import apply


def test_text_pdf_yields_text_offline(shared_docs):
    apply()
    from unstructured.partition.auto import partition

    elements = partition(filename=str(shared_docs / "layout-parser-paper-fast.pdf"), strategy="fast")
    text = " ".join(e.text for e in elements)
    assert len(elements) > 10
    assert "LayoutParser" in text
    assert {e.metadata.page_number for e in elements} == {1, 2}
    assert any(type(e).__name__ == "NarrativeText" for e in elements)  # the packaged spaCy model is used
