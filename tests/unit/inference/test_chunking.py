"""Chunk plans: whole turns, overlap, long turns cut at sentence ends, every chunk within budget."""

import pytest

from inference.chunking import pack, plan_chunks, units_of


class Words:
    """A tokenizer where a token is a whitespace-separated word: budgets are easy to reason about."""

    def count(self, texts):
        return [len(t.split()) for t in texts]

    def split(self, text, budget):
        words = text.split()
        return [" ".join(words[i : i + budget]) for i in range(0, len(words), budget)]


def plan(turns, budget=20, overlap=0, max_chunks=100, tokenizer=None):
    tokenizer = tokenizer or Words()
    units = units_of(turns, budget=budget, tokenizer=tokenizer)
    return units, pack(units, budget=budget, overlap=overlap, max_chunks=max_chunks)


def test_a_short_transcript_is_one_chunk_read_whole() -> None:
    _, result = plan([("Ann", "we ship friday"), ("Bo", "agreed")])
    assert [c.text for c in result.chunks] == ["Ann: we ship friday\nBo: agreed"]
    assert result.truncation_ratio == 0


def test_chunks_end_on_turn_boundaries_and_cover_every_turn() -> None:
    turns = [(f"S{i % 3}", " ".join(f"w{i}_{j}" for j in range(5))) for i in range(12)]
    lines = [f"{s}: {t}" for s, t in turns]
    _, result = plan(turns, budget=20)
    assert len(result.chunks) > 1
    for chunk in result.chunks:
        assert all(line in lines for line in chunk.text.split("\n"))  # whole turns only
        assert chunk.tokens <= 20
    assert [line for c in result.chunks for line in c.text.split("\n")] == lines  # in order, nothing lost
    assert result.truncation_ratio == 0


def test_overlap_repeats_the_last_turns_of_the_previous_chunk() -> None:
    turns = [("A", f"t{i} x x x") for i in range(10)]  # 6 tokens each with label and join
    _, result = plan(turns, budget=20, overlap=7)
    first, second = (c.text.split("\n") for c in result.chunks[:2])
    assert second[0] == first[-1]  # one turn (6 tokens) fits the 7-token overlap
    assert second[1] not in first


def test_a_turn_longer_than_a_chunk_is_cut_at_sentence_ends() -> None:
    long_turn = " ".join(f"Sentence {i} has five words." for i in range(10))  # 50 words
    units, result = plan([("Ann", long_turn), ("Bo", "ok")], budget=20)
    pieces = [u.text for u in units][:-1]
    assert len(pieces) > 2
    for piece in pieces:
        assert piece.startswith("Ann: ") and piece.endswith("words.")  # labelled, never mid-sentence
    assert " ".join(p.removeprefix("Ann: ") for p in pieces) == long_turn
    assert all(c.tokens <= 20 for c in result.chunks)


def test_a_sentence_longer_than_a_chunk_is_cut_by_tokens() -> None:
    units, result = plan([("Ann", "word " * 100)], budget=20)
    assert sum(len(u.text.removeprefix("Ann: ").split()) for u in units) == 100
    assert all(c.tokens <= 20 for c in result.chunks)
    assert result.truncation_ratio == 0


def test_a_speaker_name_longer_than_half_a_chunk_is_not_repeated_on_every_piece() -> None:
    name = " ".join(["Name"] * 15)
    units, result = plan([(name, "Some words here. " * 20)], budget=20)
    assert units[0].text.startswith("Some") and all(c.tokens <= 20 for c in result.chunks)


def test_max_chunks_leaves_the_rest_unread_and_says_how_much() -> None:
    turns = [("A", "x " * 10)] * 10  # 10 units of 12 tokens (label, words, join): one per chunk
    _, result = plan(turns, budget=20, max_chunks=4)
    assert len(result.chunks) == 4
    assert result.truncation_ratio == pytest.approx(6 / 10)


class Counting(Words):
    """Words, remembering how many turns it was asked to count."""

    def __init__(self) -> None:
        self.counted = 0

    def count(self, texts):
        self.counted += len(texts)
        return super().count(texts)


def test_a_transcript_past_the_chunk_cap_is_tokenized_only_as_far_as_the_chunks_reach() -> None:
    turns = [(f"S{i % 3}", f"item {i} we ship the export on friday") for i in range(5000)]  # 10 words each
    tokenizer = Counting()
    lazy = plan_chunks(turns, budget=40, overlap=10, max_chunks=20, tokenizer=tokenizer)
    units, whole = plan(turns, budget=40, overlap=10, max_chunks=20)
    assert [c.text for c in lazy.chunks] == [c.text for c in whole.chunks]
    assert tokenizer.counted < len(turns) // 4  # 20 chunks of 40 tokens reach about 100 of the 5,000 turns
    assert lazy.total_tokens == pytest.approx(whole.total_tokens, rel=0.05)  # the unread rest is estimated
    assert lazy.truncation_ratio == pytest.approx(whole.truncation_ratio, rel=0.01)


def test_a_transcript_within_the_cap_is_planned_exactly_as_a_whole() -> None:
    turns = [(f"S{i % 3}", f"item {i} we ship on friday") for i in range(300)]
    lazy = plan_chunks(turns, budget=40, overlap=10, max_chunks=1000, tokenizer=Words())
    _, whole = plan(turns, budget=40, overlap=10, max_chunks=1000)
    assert lazy == whole
