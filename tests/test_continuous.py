"""The continuous-speech benchmark (app.evaluation.continuous) and the run-on case it measures:
clips joined with short gaps, as a video's speech runs, through the batched path."""

import random

import numpy as np
import pysubs2

from app.evaluation.continuous import Reference, break_scores, shown_marks, shown_srt
from app.speech.batched import redecode_parts, sub_metadata, uncovered_from


def srt(tmp_path, cues: list[str]):
    subs = pysubs2.SSAFile()
    for n, text in enumerate(cues):
        subs.append(pysubs2.SSAEvent(start=n * 2000, end=n * 2000 + 1500, text=text))
    subs.save(str(tmp_path / "t.srt"))
    return tmp_path / "t.srt"


def test_breaks_are_found_through_the_alignment_and_run_on_lines_counted(tmp_path):
    reference = Reference(["二哥，上次看你急的时候还是在上次。我不用你过来帮我", "我自己下来吃吧"], [(0, 5), (5, 7)])
    chars, breaks = reference.chars_and_breaks()
    assert sorted(breaks) == [2, 15, 23, 30] and breaks[15] and not breaks[2]
    # A cue end after 二哥 (found), a space (found), a recognition error next to a break (上吃 for 上次),
    # and 帮我我自己 run together in one line: a sentence end with nothing visible.
    shown = shown_srt(srt(tmp_path, ["二哥", r"上次看你急的时候还是在上吃 我不用你\N过来帮我我自己下来吃吧"]))
    scores = break_scores(chars, breaks, shown)
    assert (scores["breaks"], scores["found"], scores["run_on_lines"], scores["lines"]) == (3, 2, 1, 3)
    assert scores["shown"] == 3 and scores["right"] == 2  # the line end after 你 stands at no clause end
    marks = break_scores(chars, breaks, shown_marks("二哥上次看你急的时候还是在上次。我不用你过来帮我，我自己下来吃吧。"))
    assert (marks["precision"], marks["recall"]) == (1.0, 2 / 3)


def words(*spans):
    return [{"words": [{"start": a, "end": b} for a, b in spans]}]


def test_a_window_whose_words_leave_speech_uncovered_is_decoded_again_from_there():
    regions = [{"start": 0, "end": 160000}, {"start": 200000, "end": 360000}]  # 10 s + 10 s of speech
    metadata = {"offset": 30.0, "duration": 20.0, "segments": regions}
    assert uncovered_from(words((30.1, 35.0), (35.2, 49.5)), metadata) is None  # covered to the end
    assert uncovered_from(words((30.1, 35.0), (35.2, 44.0)), metadata) == (14.0, 1)  # Whisper stopped early
    assert uncovered_from(words((30.1, 35.0), (41.0, 49.5)), metadata) == (5.0, 0)  # skipped 6 s inside
    assert uncovered_from([], metadata) is None  # no text at all: no speech heard, none invented
    assert redecode_parts(metadata, 14.0) == [(14.0, 20.0)]
    # Nothing covered before the gap: the same features would give the same words, so two halves.
    assert redecode_parts(metadata, 0.0) == [(0.0, 10.0), (10.0, 20.0)]
    assert sub_metadata(metadata, 10.0, 20.0) == {"offset": 40.0, "duration": 10.0, "segments": [regions[1]]}


def test_joined_clips_with_short_gaps_end_their_sentences(model, zh_synth, tmp_path):
    """The run-on case: 24 zh-synth sentences 0.12-0.3 s apart (about 50 s: the batched path). Every
    sentence end is seen in the SRT, none runs into the next inside a line, and TXT is punctuated."""
    from app.evaluation.continuous import SETS
    from app.language.subtitles import to_text, write_subtitles
    from app.speech.audio import SAMPLE_RATE, load_audio
    from app.speech.transcribe import TranscribeOptions, transcribe
    from tests.conftest import clip_path, read_split

    rng = random.Random(7)
    rows = rng.sample([r for r in read_split("test") if len(r["sentence"]) >= 8], 24)
    pieces, texts, spans, at = [], [], [], 0.0
    for row in rows:
        clip = load_audio(clip_path(row))
        pieces += [clip, np.zeros(int(rng.uniform(*SETS["zh-synth"]) * SAMPLE_RATE), dtype=np.float32)]
        spans.append((at, at + clip.size / SAMPLE_RATE))
        texts.append(row["sentence"])
        at += (clip.size + pieces[-1].size) / SAMPLE_RATE
    transcript = transcribe(np.concatenate(pieces), model, TranscribeOptions(english="none"))
    assert transcript.decoder == "batched"
    path = write_subtitles(transcript.cues, tmp_path / "joined.srt", ["hanzi"])
    chars, breaks = Reference(texts, spans).chars_and_breaks()
    scores = break_scores(chars, breaks, shown_srt(path))
    assert scores["run_on_lines"] <= 1 and scores["f1"] >= 0.85, scores
    marks = break_scores(chars, breaks, shown_marks(to_text(transcript.cues, ["hanzi"])))
    assert marks["recall"] >= 0.7 and marks["precision"] >= 0.8, marks
