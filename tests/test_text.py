"""The shared word and sentence functions: each tokenizer's own rules, the splitters, SQuAD normalisation."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag_ft.text import (
    BM25_STOPWORDS,
    COMMON_STOPWORDS,
    CONTENT_STOPWORDS,
    MARKER,
    bm25_stem,
    bm25_terms,
    content_words,
    normalize_answer,
    overlap_words,
    plural_stem,
    prose_sentences,
    split_sentences,
)


@pytest.mark.parametrize("word, stem", [
    ("refunds", "refund"), ("policies", "policy"), ("billing", "bill"), ("billed", "bill"),
    ("agreed", "agreed"),  # -eed is not a past tense ending
    ("status", "status"), ("analysis", "analysis"), ("class", "class"),  # -us, -is, -ss are not plurals
    ("ring", "ring"), ("bed", "bed"),  # too short to strip
    ("ties", "tie"),  # too short for -ies -> -y: only the s goes
])
def test_bm25_stem(word, stem):
    assert bm25_stem(word) == stem


@pytest.mark.parametrize("word, stem", [
    ("policies", "policy"), ("boxes", "box"), ("refunds", "refund"), ("class", "class"),
    ("billing", "billing"), ("billed", "billed"),  # plurals only
    ("yes", "yes"), ("bus", "bus"),  # too short to strip
])
def test_plural_stem(word, stem):
    assert plural_stem(word) == stem


def test_bm25_terms_keep_codes_and_single_characters():
    assert bm25_terms("Error QX-4471 on v2 after billing, x") == ["error", "qx", "4471", "v2", "after", "bill", "x"]
    assert bm25_terms("snake_case_name") == ["snake_case_name"]  # \w holds the underscore
    assert bm25_terms("How do I get my Refunds for the invoices?") == ["get", "refund", "invoice"]


def test_content_words_read_meaning_not_grammar():
    # inner dots and apostrophes stay in the word, "_" splits, single letters go but digits stay
    assert content_words("Update to v2.1 don't snake_case x 7") == ["update", "v2.1", "don't", "snake", "case", "7"]
    # a longer stopword list than retrieval's ("more", "only", "should"), but "us" is a content word here
    assert content_words("Contact us only if more boxes should ship") == ["contact", "us", "box", "ship"]
    assert bm25_terms("Contact us only if more boxes should ship") == ["contact", "only", "more", "boxe", "should",
                                                                       "ship"]


def test_overlap_words_are_unstemmed_and_three_letters_or_more():
    assert overlap_words("The Wi-Fi resets at 100 pm; it's billed") == ["wi-fi", "resets", "100", "it's", "billed"]
    assert overlap_words("Refunds refund") == ["refunds", "refund"]


def test_stopword_lists_nest_as_documented():
    assert COMMON_STOPWORDS < BM25_STOPWORDS
    assert COMMON_STOPWORDS < CONTENT_STOPWORDS
    assert BM25_STOPWORDS - CONTENT_STOPWORDS == {"us", "am", "yours"}
    assert {"more", "only", "should", "via"} <= CONTENT_STOPWORDS - BM25_STOPWORDS


def test_answer_sentences_break_at_lines_and_before_brackets():
    text = "Press pair. [1] Then wait.\n1) Open the app\n\nDone! next line stays. A new one?"
    assert split_sentences(text) == ["Press pair.", "[1] Then wait.", "1) Open the app",
                                     "Done! next line stays.", "A new one?"]
    assert split_sentences("  \n ") == []


def test_prose_sentences_join_wrapped_lines_and_keep_brackets():
    text = "The hub pairs in\n30 seconds. [See the guide] for more. Version 2.1 is out.\n\n\"Quoted\" start."
    assert prose_sentences(text) == ["The hub pairs in 30 seconds. [See the guide] for more.", "Version 2.1 is out.",
                                     "\"Quoted\" start."]


@given(st.text(alphabet="ab A1.!?[\n\"'( ", max_size=80))
def test_splitters_only_cut_at_whitespace(text):
    squeeze = "".join(text.split())
    assert "".join("".join(s.split()) for s in split_sentences(text)) == squeeze
    assert "".join("".join(s.split()) for s in prose_sentences(text)) == squeeze


def test_marker_pattern():
    assert MARKER.findall("Yes [1]. Also [2, 3] and [ 4] or [a] or [Source: x]") == ["1", "2, 3"]


def test_normalize_answer_is_squad():
    assert normalize_answer("The  Cat, sat on AN apple-tree!") == "cat sat on appletree"
    assert normalize_answer("") == ""
