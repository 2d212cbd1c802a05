"""Live captions (app/speech/live.py): the LocalAgreement policy on its own (fast), and `python -m app
live` on joined zh-synth clips as a learner runs it (model tier)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from app.evaluation.live import changed_chars, word_latencies
from app.language.subtitles import Word
from app.speech.guards import collapse_char_runs
from app.speech.live import Agreement, Char, chars_of, short_windows
from tests.conftest import ROOT, joined_audio, read_split


def hyp(text: str, start: float = 0.0, step: float = 0.2) -> list[Char]:
    """A hypothesis: each character `step` seconds long from `start`."""
    return [Char(c, start + i * step, start + (i + 1) * step) for i, c in enumerate(text)]


def texts(chars: list[Char]) -> str:
    return "".join(c.text for c in chars)


def test_first_hypothesis_commits_nothing_and_agreement_commits_the_common_prefix():
    policy = Agreement()
    assert policy.insert(hyp("我们去")) == []
    assert texts(policy.tentative) == "我们去"
    assert texts(policy.insert(hyp("我们去北京"))) == "我们去"
    assert texts(policy.tentative) == "北京"
    assert texts(policy.insert(hyp("我们去北京吧"))) == "北京"
    assert policy.text() == "我们去北京"


def test_committed_text_never_changes_when_later_hypotheses_disagree():
    policy = Agreement()
    policy.insert(hyp("他努力挣钱"))
    policy.insert(hyp("他努力正前养"))  # agrees on 他努力 only
    assert policy.text() == "他努力"
    policy.insert(hyp("她怒力挣钱养家"))  # a hypothesis that rewrites the start cannot touch it
    assert policy.text() == "他努力"
    # From 0.6 s on, where the committed text ends, the two last hypotheses disagree at once.
    assert texts(policy.tentative) == "挣钱养家"


def test_only_whole_words_are_committed():
    # 振钱 / 振勤: the hypotheses share 振 but not the word; by characters 振 would be committed (and
    # it is wrong: 挣钱). By words nothing after 努力 is.
    policy = Agreement()
    policy.insert(hyp("他努力振钱"))
    assert texts(policy.insert(hyp("他努力振勤养"))) == "他努力"
    by_chars = Agreement(whole_words=False)
    by_chars.insert(hyp("他努力振钱"))
    assert texts(by_chars.insert(hyp("他努力振勤养"))) == "他努力振"


def test_disagreeing_hypotheses_commit_nothing_until_two_agree():
    policy = Agreement()
    for text in ("这幅画", "那符话", "这服化"):
        assert policy.insert(hyp(text)) == []
    assert texts(policy.insert(hyp("这服化仿佛"))) == "这服化"


def test_characters_before_the_committed_end_are_not_new_again():
    policy = Agreement()
    policy.insert(hyp("我们去北京"))
    policy.insert(hyp("我们去北京"))
    assert policy.text() == "我们去北京" and policy.last_end == pytest.approx(1.0)
    # The same buffer decoded again: the committed characters come back with (almost) their times.
    fresh = policy.fresh(hyp("我们去北京吃饭", start=0.03))
    assert texts(fresh) == "吃饭" and fresh[0].start == pytest.approx(1.03)


def test_a_repeated_committed_tail_is_dropped_but_reduplication_is_kept():
    policy = Agreement()
    policy.finish(hyp("我们去北京"))
    # Timestamps drifted: 北京 comes back after the committed end; two or more characters repeated are dropped.
    assert texts(policy.fresh(hyp("北京吃饭", start=1.0))) == "吃饭"
    policy = Agreement()
    policy.finish(hyp("谢"))
    # 谢谢: the second 谢 starts where the first ends; one character alone is new speech.
    assert texts(policy.fresh(hyp("谢", start=0.2))) == "谢"


def test_finish_commits_the_rest_and_cut_moves_the_committed_end_to_the_pause():
    policy = Agreement()
    policy.insert(hyp("对手实力", step=0.25))
    assert texts(policy.finish()) == "对手实力" and policy.tentative == []
    policy.cut(0.9)  # Whisper stretched 力 to 1.0 s, into the pause whose middle is at 0.9
    assert policy.last_end == 0.9
    assert texts(policy.fresh(hyp("很强", start=0.85))) == "很强"
    policy.cut(5.0)  # a cut never moves the committed end later
    assert policy.last_end == 0.9


def test_marks_ride_on_the_character_before_them():
    chars = chars_of([Word("我们", 0.0, 0.4), Word("，", 0.4, 0.4), Word("去", 0.5, 0.7), Word("。", 0.7, 0.7)], 10.0)
    assert [(c.text, c.mark) for c in chars] == [("我", ""), ("们", "，"), ("去", "。")]
    assert chars[0].start == pytest.approx(10.0) and chars[1].end == pytest.approx(10.4)


def test_changed_chars_counts_what_a_later_moment_no_longer_shows():
    assert changed_chars(["", "我们", "我们去", "我们去北京"]) == 0
    assert changed_chars(["我们", "我门去"]) == 1


def test_word_latency_is_the_commit_moment_of_a_words_last_character_minus_its_end():
    chars = hyp("我们去北京")  # 我们 / 去 / 北京
    commits = [(c, moment) for c, moment in zip(chars, [1.0, 1.5, 1.5, 2.5, 3.0])]
    assert word_latencies(commits) == pytest.approx([1.5 - 0.4, 1.5 - 0.6, 3.0 - 1.0])


def test_short_windows_pad_only_inside_the_block_and_on_its_thread():
    import threading

    import faster_whisper.transcribe as fw

    features = np.zeros((80, 250), dtype=np.float32)  # 2.5 s
    with short_windows():
        assert fw.pad_or_trim(features).shape[-1] == 400  # its own length rounded up, plus 1 s
        seen = []
        other = threading.Thread(target=lambda: seen.append(fw.pad_or_trim(features).shape[-1]))
        other.start()
        other.join()
        assert seen == [3000]  # an upload decoding at the same time keeps Whisper's 30-s windows
    assert fw.pad_or_trim(features).shape[-1] == 3000


# ---- python -m app live ----------------------------------------------------------------------------

def run_live(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app", "live", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.model
def test_cli_prints_committed_pieces_as_json_lines(zh_synth, tmp_path):
    from app.language.text import cer
    from app.speech.audio import write_audio

    rows = [r for r in read_split("test") if len(r["sentence"]) >= 8][:4]
    wav = write_audio(joined_audio(rows, 0.6), tmp_path / "four.wav")
    result = run_live(str(wav), "--json")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    pieces = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(pieces) >= 2
    moments = [p["committed_at"] for p in pieces]
    assert moments == sorted(moments)
    assert all(p["start"] <= p["end"] for p in pieces)
    text = "".join(p["text"] for p in pieces)
    assert cer(["".join(r["sentence"] for r in rows)], [text]) < 0.3, text
    assert "characters committed" in result.stderr


@pytest.mark.model
def test_cli_bad_input_is_one_error_line(bad_files):
    for name in ("missing", "random"):
        result = run_live(str(bad_files[name]))
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == \
            result.stderr.strip().splitlines()[-1:], result.stderr
    result = run_live(str(bad_files["silence"]))
    assert result.returncode == 1 and result.stderr.strip().splitlines()[-1] == \
        "error: silence.wav: no speech found in the audio"


def test_a_cut_in_dense_speech_falls_between_two_characters_where_it_is_quietest():
    from app.speech.live import LiveTranscriber

    live = LiveTranscriber(model=None)
    t = np.arange(3 * 16000) / 16000
    live.buffer = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    live.buffer[int(1.24 * 16000):int(1.25 * 16000)] = 0.0  # the gap between 力 and 挣
    live.offset = 10.0  # stream seconds where the buffer starts
    live.agreement.finish([Char("力", 10.0, 11.2), Char("挣", 11.28, 12.0), Char("钱", 12.0, 12.6)])
    # Asked for 10.9 s: the nearest boundary is 力|挣 (11.24 s), the quietest 10 ms there 11.24-11.25.
    assert live._between_chars(10.9) == pytest.approx(11.245, abs=0.006)


def test_a_loop_of_one_character_is_kept_once_but_reduplication_stays():
    assert texts(collapse_char_runs(hyp("伤心呢111111111总要"))) == "伤心呢1总要"
    looped = collapse_char_runs(hyp("呢11111", start=0.0))
    assert looped[-1].start == pytest.approx(0.2) and looped[-1].end == pytest.approx(1.2)  # the loop's time
    assert texts(collapse_char_runs(hyp("哈哈哈哈谢谢"))) == "哈哈哈哈谢谢"


def test_an_utterance_committed_at_a_pause_leaves_the_next_ones_first_syllable_out():
    from app.speech.live import before_onset

    # 他属于这个组 then 他 of the next sentence, heard in part: VAD's speech ended at 1.25 s.
    hypothesis = hyp("他属于这个组", step=0.2) + [Char("他", 1.22, 1.4)]
    assert texts(before_onset(hypothesis, 1.25)) == "他属于这个组"
    assert texts(before_onset(hyp("他属于这个组"), 1.25)) == "他属于这个组"  # its own last syllable stays


def test_a_hypothesis_that_stops_at_the_committed_text_before_more_speech_is_caught():
    from app.speech.live import LiveTranscriber

    live = LiveTranscriber(model=None)
    live.offset = 65.0
    said = hyp("我是练习生", start=65.5, step=0.5)  # committed up to 68.0 s
    live.agreement.finish(said)
    # The buffer's speech runs to 76 s; Whisper said the committed sentence again and stopped.
    assert live._skipped(said, [(0.2, 11.0)])
    assert not live._skipped(said, [(0.2, 3.5)])  # the speech ends with the committed text
    live.agreement.insert(hyp("对这就是", start=68.2))  # something new is being heard: no
    assert not live._skipped(said + hyp("对这就是", start=68.2), [(0.2, 11.0)])


def test_the_committed_tail_said_again_is_found_by_its_text_when_its_times_moved():
    policy = Agreement()
    policy.finish(hyp("对这就是我万", start=68.3, step=0.4))  # the committed text ends at 70.7 s
    # Decoded again, 万 is timed to end at 70.58 s and 人 starts there: by time alone (after
    # 70.7 - OVERLAP) 人 would count as committed and be lost.
    again = hyp("对这就是我万人尽仰", start=68.3, step=0.38)
    assert again[6].start < policy.last_end - 0.1
    assert texts(policy.fresh(again)) == "人尽仰"


def test_a_pause_is_no_cut_when_the_last_committed_character_lies_mostly_after_it():
    from app.speech.live import LiveTranscriber

    def trimmed(last: Char) -> float:
        live = LiveTranscriber(model=None)
        live.buffer, live.offset = np.zeros(3 * 16000, dtype=np.float32), 118.2
        live.agreement.finish(hyp("不但不怕", start=118.2, step=0.28) + [last])
        live._trim([(0.0, 1.35), (1.9, 3.0)], 3.0)  # VAD: a pause 1.35-1.9 s, its middle at 119.825 s
        return live.offset

    assert trimmed(Char("反", 119.3, 119.6)) == pytest.approx(119.825)  # all committed speech is before it
    # 反 timed from 119.54 s, but mostly after the pause: it is the next utterance's (cut there, the
    # buffer would say 反 again).
    assert trimmed(Char("反", 119.54, 120.16)) == pytest.approx(118.2)


def test_a_phrase_said_again_at_once_with_a_character_heard_otherwise_is_dropped():
    policy = Agreement()
    policy.finish(hyp("是唯一同去月下漫步吧"))  # committed; then Whisper says it again, 是唯 heard as 四位
    assert texts(policy.fresh(hyp("四位一同去月下漫步吧", start=2.1))) == ""
    assert texts(policy.fresh(hyp("四位一同去月下漫步吧不许", start=2.1))) == "不许"
    # Speech that goes on differently is kept, even when it starts alike.
    assert texts(policy.fresh(hyp("月亮很美", start=2.1))) == "月亮很美"


def test_replay_on_cpu_time_feeds_together_what_arrived_while_decoding_took_its_cpu_time():
    from app.speech.live import replay

    cpu = [100.0]  # a fake CPU clock: each feed costs 0.8 s of CPU

    class Fake:
        received, clock = 0.0, None

        def __init__(self):
            self.fed, self.moments = [], []

        def feed(self, chunk):
            cpu[0] += 0.8
            self.fed.append(chunk.size / 16000)
            self.moments.append(self.clock())
            return []

        def finish(self):
            return []

    fake = Fake()
    list(replay(fake, np.zeros(3 * 16000, dtype=np.float32), False, 0.5, cpu_clock=lambda: cpu[0]))
    # 0.5 s arrives at 0.5 s and is done at 1.3 s; by then 0.8 s more has come, fed at once (done at
    # 2.1 s), and so on, until the last 0.1 s of the file.
    assert fake.fed == pytest.approx([0.5, 0.8, 0.8, 0.8, 0.1], abs=1e-3)
    assert fake.moments == pytest.approx([1.3, 2.1, 2.9, 3.7, 4.5], abs=1e-3)
    with pytest.raises(ValueError):
        list(replay(fake, np.zeros(16000, dtype=np.float32), True, cpu_clock=lambda: cpu[0]))


def test_phases_are_reported_each_and_as_means():
    from app.evaluation.live import phases_report

    runs = [{"phase": 0.0, "cer_live": 0.20, "latency_median": 1.0, "latency_p95": 2.0, "changed": 0, "words": 300},
            {"phase": 0.17, "cer_live": 0.16, "latency_median": 0.9, "latency_p95": 2.6, "changed": 1, "words": 301}]
    text = phases_report(runs)
    assert "phase 0.17 s: CER live 16.00%" in text
    assert "mean of 2 phases: CER live 18.00%, latency median 0.95 s, p95 2.30 s; changed at most 1" in text
    assert phases_report(runs[:1]) == ""  # one run: its figures are the report's own
