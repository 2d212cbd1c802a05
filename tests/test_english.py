"""The English line (issue 14, item 3): the `auto` default offline, the LLM source against a real chat
server on loopback, its fallback to Whisper, and the CLI saying which source was used. Issue 24, item 5:
one translation per sentence of the punctuated transcript, shown on the cues of that sentence."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from app.speech.audio import SAMPLE_RATE, load_audio
from app.language.subtitles import Cue, Word
from app.language.text import has_cjk
from app.speech.transcribe import TranscribeOptions, transcribe
from app.language.translate import (LLM_BATCH, LLMConfig, chat_url, google_reachable, llm_translate, parse_answer,
                                    sentences_of, share_over_cues)
from app.speech.english import english_for, llm_english
from tests.conftest import ROOT, clip_path, joined_audio, read_split
from tests.llm_server import ChatServer, english_of, numbered_lines
from tests.served_media import closed_port_url


@pytest.fixture(scope="module")
def chat_server():
    with ChatServer() as server:
        yield server


@pytest.fixture(scope="module")
def joined(zh_synth) -> tuple[np.ndarray, list[dict]]:
    """Six HSK sentences with pauses between them (about 15 s: the sequential path)."""
    rows = [r for r in read_split("test") if len(r["sentence"]) >= 7][:6]
    return joined_audio(rows, 1.2), rows


def test_answer_parsed_from_json_fences_objects_and_numbered_lines():
    assert parse_answer('Sure!\n```json\n["I am here.", "Good."]\n```', 2) == ["I am here.", "Good."]
    assert parse_answer('{"1": "Yes.", "2": "No."}', 2) == ["Yes.", "No."]
    assert parse_answer("<think>[\"x\"]</think>\n1. He works.\n2) She reads.\n[3] We eat.", 3) == \
        ["He works.", "She reads.", "We eat."]
    assert parse_answer('["only one"]', 2) == [None, None]  # wrong count: nothing trusted by position
    assert parse_answer("1. One.\n3. Three.", 3) == ["One.", None, "Three."]
    assert parse_answer("I cannot help with that.", 1) == [None]


def test_chat_url_from_a_base_or_a_full_url():
    assert chat_url("http://127.0.0.1:11434") == "http://127.0.0.1:11434/v1/chat/completions"
    assert chat_url("http://h:1234/v1/") == "http://h:1234/v1/chat/completions"
    assert chat_url("https://api.deepseek.com/v1/chat/completions") == "https://api.deepseek.com/v1/chat/completions"


def test_llm_translates_sentences_in_batches_with_their_neighbours(chat_server, monkeypatch, zh_synth):
    monkeypatch.setenv("ZIMU_LLM_API_KEY", "sk-test")
    texts = [r["sentence"] for r in read_split("test")[:LLM_BATCH + 5]]
    before = len(chat_server.requests)
    english, failure = llm_translate(texts, LLMConfig(chat_server.base + "/v1", "tiny"))
    assert failure is None
    assert english == [english_of(t) for t in texts]
    sent = chat_server.requests[before:]
    assert len(sent) == 2  # one request per batch of sentences
    assert all(r["headers"]["Authorization"] == "Bearer sk-test" and r["body"]["model"] == "tiny" for r in sent)
    first, second = (r["body"]["messages"][-1]["content"] for r in sent)
    # The second batch sees the two sentences before it, not numbered (not to be translated).
    assert f"Context before (do not translate):\n{texts[LLM_BATCH - 2]}\n{texts[LLM_BATCH - 1]}\n" in second
    assert f"Context after (do not translate):\n{texts[LLM_BATCH]}\n" in first
    numbered = llm_translate(texts[:3], LLMConfig(chat_server.base + "/numbered/v1", "tiny"))[0]
    assert numbered == [english_of(t) for t in texts[:3]]


def test_llm_source_on_speech_shows_the_servers_english(chat_server, model, joined):
    audio, _ = joined
    options = TranscribeOptions(english="llm", llm_url=chat_server.base + "/v1", llm_model="tiny")
    transcript = transcribe(audio, model, options)
    assert transcript.english_source == "llm" and transcript.warnings == []
    sentences = sentences_of(transcript.cues)
    assert sentences and sum(len(s.pieces) for s in sentences) >= len(transcript.cues) >= 2
    for sentence in sentences:  # each sentence shows the server's English for its Chinese, over its cues
        assert " ".join(share_over_cues(english_of(sentence.hanzi), sentence)) == english_of(sentence.hanzi)
        for cue, share in zip(sentence.cues, share_over_cues(english_of(sentence.hanzi), sentence)):
            assert share in cue.english, (cue.hanzi, cue.english, share)


def numbered_lines_sent(server, since: int) -> list[str]:
    return [line for r in server.requests[since:] for line in numbered_lines(r["body"]["messages"][-1]["content"])]


def test_llm_translates_each_sentence_once_however_the_cues_cut_it(chat_server):
    """The run-on case on hand-made cues: a sentence over five cues (more than the four cues a unit
    used to hold), its last cue also holding the whole next sentence (an orphan joined to it). The
    server gets each sentence once, whole; its English goes on its own cues, in order."""
    a, b, c = "他赶到机场的时候，飞机已经起飞了。", "请说汉语。", "他是谁？"
    texts = [["他", "赶到"], ["机场", "的", "时候", "，"], ["飞机"], ["已经", "起飞"], ["了", "。", "请", "说", "汉语", "。"],
             ["他", "是", "谁", "？"]]
    cues, at = [], 0.0
    for words in texts:
        timed = []
        for word in words:
            timed.append(Word(word, at, at if word in "，。？" else at + 0.3))
            at = timed[-1].end
        cues.append(Cue(timed[0].start, at, timed))
        at += 0.2
    assert [s.hanzi for s in sentences_of(cues)] == [a, b, c]
    before = len(chat_server.requests)
    result = llm_english(cues, LLMConfig(chat_server.base + "/v1", "tiny"), None, None, "zh", 5)
    assert result.source == "llm" and result.warnings == []
    assert numbered_lines_sent(chat_server, before) == [a, b, c]  # one translation per sentence, whole
    assert all(cue.english for cue in cues)
    assert " ".join(cue.english for cue in cues[:5]) == f"{english_of(a)} {english_of(b)}"
    assert cues[4].english.endswith(english_of(b)) and cues[5].english == english_of(c)
    assert len(cues[0].english.split()) < len(english_of(a).split())  # shared over the five cues


def test_llm_on_run_on_speech_gets_whole_sentences(chat_server, model, zh_synth):
    """Real joined speech with the short gaps of a video (0.12-0.3 s: the batched path): each line the
    server gets is one sentence of the punctuated transcript, ended by its mark (not cut at a cue
    count, not two sentences), and every cue shows the English of its own sentences."""
    import random

    from app.evaluation.continuous import SETS
    from app.language.punctuation import LONG_SENTENCE_HANZI, MARKS, SENTENCE_MARKS

    rng, (low, high) = random.Random(7), SETS["zh-synth"]
    rows = [r for r in read_split("test") if len(r["sentence"]) >= 8][20:36]
    gap = lambda: np.zeros(int(rng.uniform(low, high) * SAMPLE_RATE), dtype=np.float32)
    audio = np.concatenate([piece for r in rows for piece in (load_audio(clip_path(r)), gap())])
    before = len(chat_server.requests)
    options = TranscribeOptions(english="llm", llm_url=chat_server.base + "/v1", llm_model="tiny")
    transcript = transcribe(audio, model, options)
    assert transcript.decoder == "batched" and transcript.english_source == "llm"
    lines = numbered_lines_sent(chat_server, before)
    assert "".join(lines) == "".join(c.hanzi for c in transcript.cues)
    for line in lines:
        body = line.rstrip("".join(MARKS))
        assert not any(ch in SENTENCE_MARKS for ch in body), line  # never two sentences
        assert line[-1] in SENTENCE_MARKS or (len(body) >= LONG_SENTENCE_HANZI and line[-1] in MARKS), line
    sentences = sentences_of(transcript.cues)
    assert [s.hanzi for s in sentences] == lines and any(len(s.pieces) > 1 for s in sentences)
    for sentence in sentences:
        for cue, share in zip(sentence.cues, share_over_cues(english_of(sentence.hanzi), sentence)):
            assert share in cue.english, (cue.hanzi, cue.english, share)


def test_sentences_are_where_the_marks_end_them():
    from app.language.punctuation import LONG_SENTENCE_HANZI, sentences

    def run(text: str, at: float, step: float = 0.25) -> list[Word]:
        out = []
        for ch in text:
            out.append(Word(ch, at, at if ch in "，。？！" else at + step))
            at = out[-1].end
        return out

    runs = [run("我们明天见，", 0.0), run("好吗？好", 2.0), run("。再见！", 3.5)]
    assert [["".join(runs[r][i].text for r, i in [p]) for p in s] for s in sentences(runs)] == \
        [list("我们明天见，好吗？"), list("好。"), list("再见！")]
    # With no mark: a pause of a second ends a sentence; a run-on ends at a clause mark once long.
    assert [len(s) for s in sentences([run("我们明天", 0.0), run("再见", 3.0)])] == [4, 2]
    long = run("我们明天见" * 13 + "，后天再说。", 0.0)
    cut = sentences([long])
    assert len(cut) == 2 and long[cut[0][-1][1]].text == "，" and len(cut[0]) > LONG_SENTENCE_HANZI


def test_window_english_goes_to_the_sentence_it_is_timed_on():
    """Whisper's window English cut at its sentence ends, each piece to the Chinese sentence its time
    overlaps; a piece that also covers a neighbour left with none marks both to be decoded alone
    (the neighbour is not merged into it: one translation per sentence)."""
    from dataclasses import dataclass

    from app.speech.english import place_english

    @dataclass
    class Timed:  # the fields of a faster-whisper Segment that placing reads
        text: str
        start: float
        end: float

    cues = [Cue(0.0, 2.0, [Word("他来了", 0.0, 2.0), Word("。", 2.0, 2.0)]),
            Cue(2.2, 4.0, [Word("我们走吧", 2.2, 4.0), Word("。", 4.0, 4.0), Word("好", 4.2, 4.6)]),
            Cue(4.6, 6.0, [Word("明天见", 4.7, 5.6), Word("。", 5.6, 5.6)])]
    sentences = sentences_of(cues)
    assert [s.hanzi for s in sentences] == ["他来了。", "我们走吧。", "好明天见。"]
    english, shared = place_english([Timed(" He is here. Let's go.", 0.0, 4.0)], sentences[:2])
    assert english == ["He is here.", "Let's go."] and shared == set()
    english, shared = place_english([Timed("He came and we left.", 0.0, 4.0), Timed("See you.", 4.2, 6.0)],
                                    sentences)
    assert english[1:] == ["", "See you."] and english[0] == "He came and we left."
    assert shared == {0}  # its English covers sentence 2 too: both are decoded again on their own


def test_unusable_or_unreachable_llm_falls_back_to_whisper(chat_server, model, joined):
    audio, _ = joined
    for url in (chat_server.base + "/chinese/v1", closed_port_url("v1")):
        transcript = transcribe(audio, model, TranscribeOptions(english="llm", llm_url=url, llm_model="tiny"))
        assert transcript.english_source == "whisper", url
        assert len(transcript.warnings) == 1 and "The LLM gave no usable English" in transcript.warnings[0]
        for cue in transcript.cues:
            assert cue.english.strip() and not has_cjk(cue.english), (cue.hanzi, cue.english)


def test_llm_answer_for_some_sentences_only_keeps_those(chat_server, model, joined):
    """A sentence the LLM answers badly goes to Whisper (on its own audio); the others stay the LLM's."""
    audio, rows = joined
    cues, at = [], 0.0
    for row in rows:  # one cue per clip, at its place in the joined audio
        seconds = load_audio(clip_path(row)).size / SAMPLE_RATE
        cues.append(Cue(at, at + seconds, [Word(row["sentence"], at, at + seconds)]))
        at += seconds + 1.2
    result = english_for(cues, "llm", audio=audio, model=model, llm=LLMConfig(chat_server.base + "/partial/v1", "tiny"))
    assert result.source == "llm"
    assert len(result.warnings) == 1 and "for 1 of 6 sentences" in result.warnings[0]
    expected = [english_of(r["sentence"]) for r in rows]
    assert [c.english for i, c in enumerate(cues) if i != 1] == expected[:1] + expected[2:]
    assert cues[1].english.strip() and not has_cjk(cues[1].english)


@pytest.mark.slow
def test_default_offline_gives_whisper_english_on_every_cue(model, zh_synth):
    """No --english option, no network: Whisper's English (batched, decoded with the text) on every cue."""
    if google_reachable():
        pytest.skip("Google Translate is reachable from this machine")
    rows = [r for r in read_split("test") if len(r["sentence"]) >= 6][:14]
    audio = joined_audio(rows, 0.6)
    transcript = transcribe(audio, model, TranscribeOptions())
    assert transcript.decoder == "batched" and transcript.english_source == "whisper"
    assert transcript.warnings == [] or all("Whisper's English was unusable" in w for w in transcript.warnings)
    for cue in transcript.cues:
        assert cue.english.strip() and not has_cjk(cue.english), (cue.hanzi, cue.english)


@pytest.mark.model
def test_cli_says_which_english_source_it_used(zh_synth, tmp_path):
    clip = clip_path(next(r for r in read_split("test") if len(r["sentence"]) >= 8))
    result = subprocess.run([sys.executable, "-m", "app", "transcribe", str(clip), "-o", str(tmp_path),
                             "--formats", "srt"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    expected = "Google Translate" if google_reachable() else "Whisper (offline)"
    assert f"English: {expected} →" in result.stdout, result.stdout
    english = (tmp_path / f"{clip.stem}.srt").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert english.strip() and not has_cjk(english), english


def test_cli_llm_without_endpoint_is_one_error_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "app", "transcribe", "x.mp3", "--english", "llm"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={k: v for k, v in os.environ.items() if not k.startswith("ZIMU_LLM")})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == "error: --english llm needs --llm-url and --llm-model " \
                                    "(or $ZIMU_LLM_URL and $ZIMU_LLM_MODEL)"


def test_glosses_take_the_sense_the_pinyin_reads_without_notes():
    from app.language.text import split_words
    from app.language.gloss import GLOSS_LINE, cedict_gloss, gloss

    assert gloss("东西") == "thing"  # dōngxi, the pinyin line's reading; not dōngxī 'east and west'
    assert cedict_gloss(split_words("他被老师批评了")).split(" · ")[1] == "passive voice"  # 被: not 'quilt'
    assert cedict_gloss(["他", "还", "没", "来"]).split(" · ")[1] == "still"  # hái
    long = cedict_gloss(split_words("我们明天下午在图书馆旁边的咖啡店见面，然后一起去看电影吧"))
    for line in long.split("\n"):
        assert 0 < len(line) <= GLOSS_LINE and not has_cjk(line), line
        assert not any(c in line for c in "()[]"), line
    assert len(long.split("\n")) >= 2


def test_glosses_only_above_a_chosen_hsk_level():
    from app.language.text import split_words
    from app.language.gloss import cedict_gloss

    words = split_words("我们讨论环境污染")
    every = cedict_gloss(words).split(" · ")
    advanced = cedict_gloss(words, min_level=4).split(" · ")
    assert "we" in every[0].lower() and len(advanced) < len(every)
    assert all(part in every for part in advanced)


@pytest.mark.model
def test_evaluate_english_scores_each_source(zh_synth, capsys):
    from app.evaluation.english import main

    assert main([str(zh_synth), "--split", "test", "--limit", "3", "--sources", "cedict"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| cedict |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert 5 < float(cells[1]) < 100 and 5 < float(cells[2]) < 100
    assert int(cells[3]) >= 3 and cells[4] == "0" and cells[5] == "0"  # lines, with Chinese, empty
    assert main([str(zh_synth), "--sources", "bogus"]) == 1


@pytest.mark.slow
def test_ui_menu_defaults_to_auto_and_offers_the_llm_only_when_the_server_has_one():
    script = "from app.ui import english_choices; print([k for _, k in english_choices()])"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZIMU_LLM")}
    plain = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, env=env)
    served = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                            env={**env, "ZIMU_LLM_URL": "http://127.0.0.1:9/v1", "ZIMU_LLM_MODEL": "tiny"})
    assert plain.stdout.strip() == "['auto', 'google', 'whisper', 'cedict', 'none']", plain.stderr
    assert served.stdout.strip() == "['auto', 'google', 'whisper', 'llm', 'cedict', 'none']", served.stderr
    menu = subprocess.run([sys.executable, "-c", "from app.ui import build_ui; print([(b.value, b.choices[0]) for b in "
                           "build_ui().blocks.values() if getattr(b, 'label', None) == 'English line'])"],
                          cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert "[('auto', ('Automatic: Google when reachable, else Whisper', 'auto'))]" in menu.stdout, menu.stderr


def test_english_too_short_for_its_sentence_is_decoded_again(model, joined):
    """Whisper often leaves a sentence out of a window's English; the line that results is far
    shorter than its Chinese and is decoded again on its own audio."""
    from app.language.translate import english_too_short
    from app.speech.english import settle_sentences

    audio, rows = joined
    cues, at = [], 0.0
    for row in rows[:2]:
        seconds = load_audio(clip_path(row)).size / SAMPLE_RATE
        cues.append(Cue(at, at + seconds, [Word(row["sentence"], at, at + seconds)]))
        at += seconds + 1.2
    kept = "A full English sentence for the first clip, long enough."
    sentences = sentences_of(cues)
    assert [s.cues for s in sentences] == [[cues[0]], [cues[1]]]
    assert english_too_short("He.", rows[1]["sentence"]) and not english_too_short(kept, rows[0]["sentence"])
    assert settle_sentences(sentences, [kept, "He."], audio, model, "zh", 5, retry_short=True) == 0
    assert cues[0].english == kept
    assert len(cues[1].english) >= 2 * len(rows[1]["sentence"]) and not has_cjk(cues[1].english), cues[1].english


def test_long_file_english_scored_in_units_of_whole_sentences():
    """A recognised sentence over two clips makes them one unit; a clip no cue reaches scores empty."""
    from app.evaluation.english import scoring_units

    spans = [(0.0, 2.0), (2.6, 4.0), (4.6, 6.0), (6.6, 8.0)]
    refs = ["One.", "Two.", "Three.", "Four."]
    cues = [Cue(0.1, 1.9, [Word("一。", 0.1, 1.9)], english="one"),
            Cue(2.7, 4.4, [Word("二三", 2.7, 4.4)], english="two and"),  # its sentence runs on into clip 3
            Cue(4.5, 5.9, [Word("三。", 4.5, 5.9)], english="three")]
    hypotheses, references = scoring_units(cues, spans, refs)
    assert references == ["One.", "Two. Three.", "Four."]
    assert hypotheses == ["one", "two and three", ""]
