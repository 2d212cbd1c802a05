"""training.real_speech: transcript origins (package, corpus, hand-corrected) in the clip list."""

from __future__ import annotations

import pytest

from training.real_speech import COLUMNS, TRANSCRIPT_ORIGINS, read_clips


def test_corpus_transcripts_say_where_the_text_was_read():
    clips = read_clips()
    assert {c.transcript_origin for c in clips} <= set(TRANSCRIPT_ORIGINS)
    corpus = [c for c in clips if c.transcript_origin == "corpus"]
    assert corpus, "the AISHELL-1 clips shipped by s3tokenizer"
    for clip in corpus:
        assert clip.note and "transcript" in clip.note, clip.id


def test_unknown_transcript_origin_is_refused(tmp_path):
    row = dict.fromkeys(COLUMNS, "x")
    row.update(split="dev", start="0", end="", transcript_origin="guessed")
    path = tmp_path / "clips.tsv"
    path.write_text("\t".join(COLUMNS) + "\n" + "\t".join(row[c] for c in COLUMNS) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="transcript_origin"):
        read_clips(path)
