"""Long meetings through a real (tiny, random-weight) model: chunked, merged, every call scored."""

import pytest

from inference.backends.hf import TextModel
from inference.longform import Summarizer
from inference.slices import Slice
from shared.config import Settings
from shared.prompts import SummaryLength

MEDIUM = SummaryLength.MEDIUM


@pytest.fixture(scope="module")
def small(test_models):
    return TextModel.load(str(test_models[0]), device="cpu")


@pytest.fixture(scope="module")
def large(test_models):
    return TextModel.load(str(test_models[1]), device="cpu")


def summarizer(model, tier="small", **overrides) -> Summarizer:
    base = {
        "small_max_input_tokens": 256,
        "large_max_input_tokens": 512,
        "chunk_summary_tokens": 16,
        "chunk_overlap_tokens": 16,
        "summary_tokens_short": 18,
        "summary_tokens_medium": 24,
        "summary_tokens_long": 40,
    }
    return Summarizer(model, Settings(**(base | overrides)).tier(tier))


def meeting_turns(meeting) -> list[tuple[str, str]]:
    return [(t["speaker"], t["text"]) for t in meeting["turns"] if t["text"].strip()]


def test_a_transcript_that_fits_takes_one_call(small) -> None:
    [done] = summarizer(small).summarize(
        [([("Ann", "we ship friday"), ("Bo", "agreed")], MEDIUM)], scores=True
    )
    assert (done.chunks, done.levels, done.calls, done.truncation_ratio) == (1, 1, 1, 0.0)
    assert len(done.stats) == 1 and len(done.stats[0].margins) == done.output_tokens <= 24


def test_a_long_meeting_is_read_whole_in_chunks_and_merged(small, dev_meetings) -> None:
    meeting = max(dev_meetings, key=lambda m: m["n_words"])
    tool = summarizer(small)
    [done] = tool.summarize([(meeting_turns(meeting), MEDIUM)], scores=True)

    assert done.chunks > 20 and done.truncation_ratio == 0.0
    assert done.levels >= 3  # chunks -> merges -> final: recursion was needed at a 256-token window
    assert done.calls > done.chunks and len(done.stats) == done.calls
    assert sum(len(s.margins) for s in done.stats) == done.output_tokens
    assert (
        done.input_tokens > small.count([" ".join(t for _, t in meeting_turns(meeting))])[0]
    )  # plus overlap
    assert done.input_tokens <= done.calls * 256  # no call ever exceeded the window
    assert done.text and done.seconds > 0


def test_documents_summarized_together_match_one_at_a_time(small, dev_meetings) -> None:
    docs = [(meeting_turns(m)[:150], MEDIUM) for m in dev_meetings[:2]] + [([("Ann", "short one")], MEDIUM)]
    tool = summarizer(small, small_batch_size=4)
    together = tool.summarize(docs, scores=True)
    alone = [tool.summarize([doc], scores=True)[0] for doc in docs]
    for t, a in zip(together, alone, strict=True):
        assert (t.text, t.chunks, t.calls, t.input_tokens) == (a.text, a.chunks, a.calls, a.input_tokens)
        for ts, als in zip(t.stats, a.stats, strict=True):
            assert ts.margins == pytest.approx(als.margins, abs=1e-5)
            assert ts.entropies == pytest.approx(als.entropies, abs=1e-4)
            assert ts.logprobs == pytest.approx(als.logprobs, abs=1e-4)
    assert together[0].chunks > 1 and max(d.batch_size for d in together) == 4


def test_summary_length_picks_the_instruction_and_the_final_budget(small, dev_meetings) -> None:
    tool = summarizer(small, small_max_input_tokens=2048)
    turns = meeting_turns(dev_meetings[0])[:20]
    short, long = tool.summarize([(turns, SummaryLength.SHORT), (turns, SummaryLength.LONG)], scores=True)
    assert short.calls == long.calls == 1
    assert len(short.stats[0].margins) <= 18 < 40 >= len(long.stats[0].margins)
    assert short.input_tokens != long.input_tokens  # different instructions


def test_max_chunks_bounds_the_work_and_records_truncation(small, dev_meetings) -> None:
    meeting = max(dev_meetings, key=lambda m: m["n_words"])
    [done] = summarizer(small, max_chunks=3).summarize([(meeting_turns(meeting), MEDIUM)])
    assert done.chunks == 3
    assert 0.8 < done.truncation_ratio < 1


def test_the_large_model_reads_whole_when_it_fits_else_chunks(large, dev_meetings) -> None:
    short_meeting = min(dev_meetings, key=lambda m: m["n_words"])
    tool = summarizer(large, tier="large", large_max_input_tokens=4096)
    turns = meeting_turns(short_meeting)[:30]
    [whole] = tool.summarize([(turns, MEDIUM)])
    assert (whole.chunks, whole.calls) == (1, 1)
    [chunked] = summarizer(large, tier="large").summarize([(meeting_turns(short_meeting), MEDIUM)])
    assert chunked.chunks > 1 and chunked.truncation_ratio == 0.0


def test_the_compile_setting_reaches_the_workers_model(test_models, configure) -> None:
    from inference.summarizers import summarizer

    configure(RECAP_SMALL_MODEL=str(test_models[0]), RECAP_DEVICE="cpu", RECAP_TORCH_COMPILE="true")
    compiled = summarizer("small").model.model.forward
    configure(RECAP_TORCH_COMPILE="false")
    plain = summarizer("small").model.model.forward
    # torch.compile wraps lazily (nothing compiles until a call), so this checks the wiring, not a compile.
    assert hasattr(compiled, "_torchdynamo_orig_callable")
    assert not hasattr(plain, "_torchdynamo_orig_callable")


class DictMemo:
    """A memo in memory (the stages keep theirs in the database: shared/db/calls.py)."""

    deferrable = False  # never waits for batch-mates (there are none here)

    def __init__(self) -> None:
        self.rows: dict[str, dict] = {}

    def get(self, key: str) -> dict | None:
        return self.rows.get(key)

    def put(self, calls: list[tuple[str, dict]]) -> None:
        self.rows.update(calls)


def test_a_long_meeting_in_slices_makes_each_call_once_and_ends_as_it_would_whole(small) -> None:
    turns = [
        (
            ("Ann", "Bo", "Cy")[i % 3],
            f"Item {i}: we moved the launch review and checked the budget for team {i}.",
        )
        for i in range(150)
    ]
    tool = summarizer(small)
    [whole] = tool.summarize([(turns, MEDIUM)], scores=True)
    memo, visits = DictMemo(), []
    while not visits or visits[-1].parked:
        kept = len(memo.rows)
        # No seconds: each visit makes one batch of new calls (at least one call, so it always progresses).
        [done] = tool.summarize([(turns, MEDIUM)], scores=True, slices=[Slice(memo, 0)])
        assert 0 < len(memo.rows) - kept <= tool.tier.batch_size
        assert done.parked or done.text
        visits.append(done)
    assert whole.calls > 2 * tool.tier.batch_size and len(visits) >= whole.calls // tool.tier.batch_size
    final = visits[-1]
    assert (final.text, final.calls, final.chunks, final.levels) == (
        whole.text,
        whole.calls,
        whole.chunks,
        whole.levels,
    )
    # The gate reads the same scores (batched with other rows, a call's floats move in the 5th decimal).
    assert [len(s.margins) for s in final.stats] == [len(s.margins) for s in whole.stats]
    flat = [m for s in final.stats for m in s.margins]
    assert flat == pytest.approx([m for s in whole.stats for m in s.margins], abs=1e-4)
    assert sum(v.input_tokens for v in visits) == whole.input_tokens  # each call made, and billed, once
    assert sum(v.output_tokens for v in visits) == whole.output_tokens
    assert all(v.text == "" for v in visits[:-1])
