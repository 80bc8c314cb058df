"""Words and sentences: the tokenizers, stemmers, stopwords and sentence splitters the engine shares.

There are deliberately three ways to cut text into words, one per use, because each use needs a
different trade-off and changing one would change the numbers it feeds:

- ``bm25_terms``: retrieval terms. Every ``\\w+`` run except stopwords, stemmed harder (-ing, -ed too) so
  a question's "billing" meets a document's "billed"; single letters and digits stay, because error codes
  and versions ("QX-4471", "v2") are what BM25 is in the pipeline for. Its output fixes the BM25 figures
  of bench/retrieval.py: change it only with a new benchmark run.
- ``content_words``: citation support (share of a sentence's words found in a passage). A longer
  stopword list and plural-only stemming, and words may hold inner dots or apostrophes ("v2.1", "don't"),
  so a sentence's meaning, not its grammar, decides whether a passage supports it.
- ``overlap_words``: how much of a generated answer is copied from its passage. Unstemmed words of three
  or more letters: the generator must reuse the passage's wording, so no stemming forgives a change.
"""

from __future__ import annotations

import re
import string

# ---------------------------------------------------------------- stopwords

# the commonest function words: dropped by every tokenizer
COMMON_STOPWORDS = frozenset(
    "the a an and or of to in on for is are be was were it this that with as at by from your you can "
    "will not do does if any all our we they their its has have".split()
)
# retrieval: also pronouns, auxiliaries and question words, so a question's phrasing does not outweigh its topic
BM25_STOPWORDS = COMMON_STOPWORDS | frozenset(
    "am been but could did had he her his how i into me my no so than them then there these us what when where "
    "which who why would yours she".split()
)
# citation support: also quantifiers, modals and prepositions. It never held "us", "am" and "yours"
# (which retrieval drops); kept so, since support scores and the citations shown depend on this list.
CONTENT_STOPWORDS = (BM25_STOPWORDS - {"us", "am", "yours"}) | frozenset(
    "being both doing down during each few further again after about before between here more most must "
    "once only other out over own per same shall should some such off through too under up very via yes "
    "whom whose just also those may might".split()
)

# ---------------------------------------------------------------- words

BM25_WORD = re.compile(r"\w+", re.UNICODE)
# letters/digits, with inner dots or apostrophes kept in one word ("v2.1", "don't"); "_" is not a letter
CONTENT_WORD = re.compile(r"[^\W_]+(?:[.'’][^\W_]+)*", re.UNICODE)
OVERLAP_WORD = re.compile(r"[a-z0-9][a-z0-9'-]*")


def bm25_stem(word: str) -> str:
    """A deliberately light stemmer: plurals and a few verb endings (refunds -> refund, billing -> bill)."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 5 and word.endswith("ing"):
        return word[:-3]
    if len(word) > 4 and word.endswith("ed") and not word.endswith("eed"):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def bm25_terms(text: str) -> list[str]:
    """Retrieval terms of a text, in order: lower-cased ``\\w+`` words without stopwords, stemmed."""
    return [bm25_stem(w) for w in BM25_WORD.findall(text.lower()) if w not in BM25_STOPWORDS]


def plural_stem(word: str) -> str:
    """Plurals only (policies -> policy, boxes -> box, refunds -> refund); a lower-cased word."""
    for suffix in ("ies", "es", "s"):
        if len(word) > 4 and word.endswith(suffix) and not word.endswith("ss"):
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def content_words(text: str) -> list[str]:
    """Lower-cased words that carry meaning (no stopwords, no bare markers), lightly stemmed."""
    words = []
    for w in CONTENT_WORD.findall(text.lower()):
        if w in CONTENT_STOPWORDS or (len(w) < 2 and not w.isdigit()):
            continue
        words.append(plural_stem(w))
    return words


def overlap_words(text: str) -> list[str]:
    """Lower-cased, unstemmed words of three or more characters, without the commonest stopwords."""
    return [w for w in OVERLAP_WORD.findall(text.lower()) if w not in COMMON_STOPWORDS and len(w) > 2]


# ---------------------------------------------------------------- sentences

# a sentence ends at . ! or ? before a space and a capital, digit, quote or bracket
_ANSWER_BREAK = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])|\n+")
_PROSE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def split_sentences(text: str) -> list[str]:
    """A model's answer as sentences, to check the citations of each: a line break ends a sentence too
    (answers list steps one per line), and so does a full stop before "[" (a marker or a tag)."""
    return [s.strip() for s in _ANSWER_BREAK.split(text) if s and s.strip()]


def prose_sentences(text: str) -> list[str]:
    """A document's text as sentences. Its line breaks are layout (wrapped lines), so lines are joined
    first. Unlike answers, a full stop before "[" is not a break (the generator's rule since it was written;
    its extractive pairs depend on it)."""
    flat = " ".join(text.split())
    return [s.strip() for s in _PROSE_BREAK.split(flat) if s.strip()]


# ---------------------------------------------------------------- markers and answers

# a citation marker as the prompt asks for it: [1] or [1, 3]; group 1 holds the numbers
MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, no punctuation, no articles (a, an, the), single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


# ---------------------------------------------------------------- bullets from PDFs

# PDF fonts (Symbol, Wingdings) draw list bullets with Private Use Area code points; text extraction keeps
# the code point, which ordinary fonts show as an empty box. The small squares are bullets of other tools.
_PDF_BULLETS = re.compile("[\uf0b7\uf0a7\uf0a8\uf0d8\uf0d7\uf0fc\uf06e\uf06c\uf076\uf0e0\uf02d\u25aa\u25ab\u25fe\u25fd]")


def show_bullets(text: str) -> str:
    """``text`` with the bullet glyphs PDFs leave behind (U+F0B7, U+F0A7, U+25AA...) shown as "•"."""
    return _PDF_BULLETS.sub("\u2022", text)
