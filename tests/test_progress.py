"""Progress as a log shows it: a line per stage in words, no bar drawing, no empty lines."""

from __future__ import annotations

import io

from app.base.progress import StageProgress, progress


def test_a_stage_is_one_line_of_words_in_a_log():
    log = io.StringIO()
    with StageProgress("clip.mp3", stream=log) as bar:
        bar.update(0.0, "Decoding")
        bar.update(0.0, "Decoding")
        bar.update(0.3, "Transcribing")
        bar.update(0.6, "Transcribing")  # within 30 s of the last line: not written
        bar.update(1.0, "Translating")
    assert log.getvalue() == "clip.mp3: decoding\nclip.mp3: transcribing\nclip.mp3: translating\n"


def test_a_long_stage_gets_a_percentage_line_at_most_every_30_s():
    seconds = iter([0.0, 10.0, 31.0, 40.0, 70.0])
    log = io.StringIO()
    bar = StageProgress("talk.mp4", stream=log, clock=lambda: next(seconds))
    for fraction in (0.0, 0.2, 0.4, 0.5, 0.8):
        bar.update(fraction, "transcribing")
    assert log.getvalue().splitlines() == ["talk.mp4: transcribing", "talk.mp4: transcribing 40%",
                                           "talk.mp4: transcribing 80%"]


def test_a_loop_in_a_log_writes_no_empty_and_no_repeated_line():
    log = io.StringIO()
    for _ in progress(range(3), desc="clips", file=log):
        pass
    lines = log.getvalue().split("\n")
    assert lines[-1] == "" and all(line.strip() for line in lines[:-1]), log.getvalue()
    assert len(set(lines[:-1])) == len(lines[:-1]) and "3/3" in lines[-2], log.getvalue()
