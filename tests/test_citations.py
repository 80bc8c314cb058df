"""Citation mapping and verification on hand-written answers."""

from rag_ft.chat.citations import check, markers_in, support
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


def test_unsupported_marker_is_flagged():
    out = check("Refunds are issued within 14 days [1]. The office cat is named Biscuit [3].", PASSAGES)
    by = {c.marker: c for c in out.citations}
    assert by[1].supported and not by[3].supported and by[3].support < 0.25


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
