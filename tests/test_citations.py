"""Citation mapping and verification on hand-written answers."""

from rag_ft.chat.citations import check, markers_in, support, support_summary
from rag_ft.records import Passage


def P(text, doc="guide.pdf", pages=(1,)):
    return Passage(text=text, document=doc, pages=list(pages), section="", chunk_index=0, score=0.9)


PASSAGES = [
    P("Refunds are issued within 14 days of a cancellation request.", "billing.md", ()),
    P("The Pro plan costs 12 euros per user per month, billed annually.", "pricing.pdf", (3,)),
    P("Two-factor authentication can be enabled under Settings > Security.", "account.pdf", (2, 3)),
]


def test_valid_markers_map_to_passages():
    out = check("The Pro plan costs 12 euros per user per month [2]. Refunds take 14 days [1].", PASSAGES)
    assert [c.marker for c in out.citations] == [1, 2]
    assert all(c.supported for c in out.citations)
    assert out.citations[1].passage.document == "pricing.pdf" and out.removed == []
    assert "12" in out.citations[1].highlights and "euros" in out.citations[1].highlights


def test_dangling_marker_is_removed():
    out = check("Refunds are issued within 14 days [1][7]. Also see [9].", PASSAGES)
    assert out.removed == [7, 9]
    assert "[7]" not in out.text and "[9]" not in out.text and "[1]" in out.text
    assert out.text.endswith("Also see.")
    assert [c.marker for c in out.citations] == [1]


def test_unsupported_marker_with_no_better_passage_is_dropped_and_its_sentence_marked():
    out = check("Refunds are issued within 14 days [1]. The office cat is named Biscuit [3].", PASSAGES)
    assert [c.marker for c in out.citations] == [1] and out.citations[0].supported
    assert out.dropped == [3] and out.removed == []
    assert out.text == "Refunds are issued within 14 days [1]. The office cat is named Biscuit."
    assert out.unsupported == ["The office cat is named Biscuit."]
    assert out.claims == 2 and out.support_level == 0.5


def test_marker_on_the_wrong_passage_moves_to_the_supporting_one():
    out = check("The Pro plan costs 12 euros per user per month [1]. Refunds take 14 days [1].", PASSAGES)
    assert out.text == "The Pro plan costs 12 euros per user per month [2]. Refunds take 14 days [1]."
    by = {c.marker: c for c in out.citations}
    assert by[2].moved_from == [1] and not by[2].attached and by[2].sentences == [
        "The Pro plan costs 12 euros per user per month [2]."]
    assert by[1].moved_from == [] and out.dropped == [] and out.unsupported == [] and out.support_level == 1.0


def test_a_move_onto_a_passage_the_sentence_already_cites_is_not_doubled():
    out = check("Two-factor authentication is under Settings, Security [3][1].", PASSAGES)
    assert out.text == "Two-factor authentication is under Settings, Security [3]."
    assert [(c.marker, c.moved_from) for c in out.citations] == [(3, [1])]


def test_every_shown_citation_supports_its_sentence():
    answer = ("Refunds are issued within 14 days [2]. The Pro plan costs 12 euros [3].\n"
              "Enable two-factor authentication under Settings [1]. Our CEO likes jazz [2].")
    out = check(answer, PASSAGES)
    for c in out.citations:
        assert all(support(s, c.passage.text) >= 0.25 for s in c.sentences), (c.marker, c.sentences)
    assert out.text.count("\n") == 1  # the answer's layout is kept
    assert out.unsupported == ["Our CEO likes jazz."] and out.dropped == [2]


def test_unmarked_claim_next_to_marked_ones_gets_its_passage_attached():
    out = check("Refunds are issued within 14 days [1]. The Pro plan costs 12 euros per month.", PASSAGES)
    by = {c.marker: c for c in out.citations}
    assert not by[1].attached and by[2].attached and out.text.endswith("12 euros per month [2].")


def test_support_summary_says_how_well_an_answer_is_supported():
    out = check("Refunds are issued within 14 days [1]. The office cat is named Biscuit [3].", PASSAGES)
    assert support_summary(out.support_level, out.claims, len(out.unsupported)) == (
        "Partly supported: 1 of 2 sentences backed by a retrieved passage.")
    assert support_summary(1.0, 1, 0).startswith("Well supported: 1 of 1 sentence ")
    assert support_summary(0.0, 2, 2).startswith("Not supported: 0 of 2")
    assert support_summary(None, 0, 0) == ""


def test_grouped_markers():
    assert markers_in("claims [1, 3] and [2]") == [1, 3, 2]
    out = check("Pro costs 12 euros per month and 2FA is under Settings [2, 3].", PASSAGES)
    assert {c.marker for c in out.citations} == {2, 3}


def test_no_markers_attaches_supporting_passages_only():
    out = check("You can enable two-factor authentication under Settings, Security. I hope this helps!", PASSAGES)
    assert [c.marker for c in out.citations] == [3]
    assert out.citations[0].attached and "[3]" in out.text
    assert "helps!" in out.text and out.text.count("[") == 1


def test_no_markers_and_no_support_attaches_nothing():
    out = check("The weather in Lisbon is sunny today.", PASSAGES)
    assert out.citations == [] and out.text == "The weather in Lisbon is sunny today."


def test_support_score():
    assert support("Refunds take 14 days [1].", PASSAGES[0].text) == 0.75  # refund, 14, day of refund, take, 14, day
    assert support("Bananas are yellow.", PASSAGES[0].text) == 0.0


def test_a_marker_alone_on_its_line_is_checked_against_the_sentence_above():
    out = check("The Pro plan costs 12 euros per user per month.\n[1]\nRefunds take 14 days.\n[1]", PASSAGES)
    assert out.text == "The Pro plan costs 12 euros per user per month.\n[2]\nRefunds take 14 days.\n[1]"
    assert [(c.marker, c.moved_from, c.attached) for c in out.citations] == [(1, [], False), (2, [1], False)]
    assert out.citations[1].sentences == ["The Pro plan costs 12 euros per user per month.\n[2]"]
    assert out.claims == 2 and out.unsupported == []
