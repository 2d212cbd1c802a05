"""The study player's data (app/study/player.py) and the decks (app/study/anki.py), without a browser."""

from __future__ import annotations

import json
import sqlite3
import zipfile

import numpy as np

from app.language.subtitles import Cue, Word
from app.language.pinyin import pinyin_line


def cue(text_words: list[str], start: float, step: float = 0.3, english: str = "") -> Cue:
    words, t = [], start
    for w in text_words:
        words.append(Word(w, t, t + step * len(w)))
        t += step * len(w)
    hanzi = "".join(text_words)
    return Cue(start, t + 0.2, words, pinyin=pinyin_line(hanzi), english=english)


CUES = [cue(["我", "还", "钱", "。"], 0.0, english="I pay back the money."),
        cue(["他", "还", "在", "北京", "工作", "。"], 3.0, english="He still works in Beijing."),
        cue(["我们", "一起", "去", "北京", "吧", "。"], 7.0)]


def test_cards_read_each_word_as_the_line_does():
    from app.study.player import study_data

    data = study_data(CUES)
    cards = data["cards"]
    # 还 first occurs as huán 'to pay back' (还钱); its card keeps that first reading and its senses.
    assert cards["还"]["pinyin"] == "huán" and cards["还"]["senses"][0] == "to pay back"
    assert cards["还"]["count"] == 2 and cards["北京"]["count"] == 2 and cards["我"]["count"] == 1
    assert cards["北京"]["pinyin"] == "Běijīng" and cards["北京"]["first"] == 1
    assert cards["工作"]["hsk"] == 1 and cards["北京"]["hsk"] is None  # on no HSK 3.0 list
    assert cards["吧"]["senses"] and not any("bar" in s for s in cards["吧"]["senses"])  # ba, not bā
    assert "。" not in cards  # punctuation is no word
    words = data["cues"][1]["words"]
    assert [w["h"] for w in words] == ["他", "还", "在", "北京", "工作", "。"]
    assert words[1]["s"] == ["hái"] and words[1]["t"] == [2]  # 还 here is hái 'still', in context
    assert words[3]["start"] == 3.9 and words[3]["end"] == 4.5  # timed by the recogniser's words
    json.dumps(data, ensure_ascii=False)  # the player reads it as JSON


def test_transcript_blocks_carry_their_times_and_words():
    from app.study.player import transcript_html

    html = transcript_html(CUES)
    assert html.count('class="cue"') == 3
    assert 'data-i="1" data-start="3.000" data-end="' in html
    assert 'data-word="工作" data-hsk="1"' in html and 'data-word="北京" data-hsk="0"' in html
    assert "<rt>huán</rt>" in html and "<rt>hái</rt>" in html


def test_vocabulary_keeps_words_at_or_above_the_level_and_leaves_names_out():
    from app.study.anki import vocabulary
    from app.study.player import hsk_level

    words = vocabulary(CUES, 2)
    assert [w for w, _ in words] == [w for w, _ in words if (hsk_level(w) or 10) >= 2]
    assert "北京" not in dict(words)  # a name: not a word to learn
    assert ("一起", 2) in words  # HSK 2, with the first cue it is in
    assert "我" not in dict(words) and "工作" not in dict(words)  # HSK 1


def test_word_deck_without_voices_keeps_its_notes_and_sentence_clips(tmp_path, monkeypatch):
    from app.speech import synthesis
    from app.study.anki import WORD_FIELDS, export_deck

    monkeypatch.setenv(synthesis.VOICES_ENV, str(tmp_path / "no-voices"))  # a machine without the voices
    audio = (np.sin(np.arange(16000 * 10) / 8) * 8000).astype(np.int16)
    files = export_deck(CUES, audio, tmp_path, "deck", "Lesson 1", [("还", 0), ("一起", None)])
    lines = files["csv"].read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3 and lines[0].endswith(",wordaudio") and lines[1].endswith(",")
    assert WORD_FIELDS[-1] == "WordAudio"


def test_word_deck_has_a_note_per_word_with_its_sentence_and_clip(tmp_path, voices):
    from app.speech.audio import load_audio
    from app.study.anki import WORD_FIELDS, export_deck

    audio = (np.sin(np.arange(16000 * 10) / 8) * 8000).astype(np.int16)  # 10 s, audible
    files = export_deck(CUES, audio, tmp_path, "deck", "Lesson 1", [("还", 0), ("一起", None), ("熊猫", None)])
    with zipfile.ZipFile(files["apkg"]) as z:
        media = json.loads(z.read("media"))
        (tmp_path / "c.anki2").write_bytes(z.read("collection.anki2"))
    with sqlite3.connect(tmp_path / "c.anki2") as db:
        notes = [r[0].split("\x1f") for r in db.execute("select flds from notes order by id")]
    # 熊猫 is in no sentence: skipped. 还 keeps the sentence it was saved from and its reading there
    # (huán 'to pay back'; alone it would read hái 'still').
    assert [n[0] for n in notes] == ["还", "一起"]
    assert notes[0][4] == "我还钱。" and notes[0][1] == "huán" and notes[0][2].startswith("to pay back")
    assert notes[1][4] == "我们一起去北京吧。" and notes[1][3] == "HSK 2"
    # Each note: its sentence's clip and the word spoken alone, a file of its own (huán, as the card reads it).
    spoken = [n[WORD_FIELDS.index("WordAudio")][len("[sound:"):-1] for n in notes]
    assert sorted(media.values()) == sorted([n[7][len("[sound:"):-1] for n in notes] + spoken)
    assert all((files["media"] / name).is_file() and load_audio(files["media"] / name).size > 0.3 * 16000
               for name in spoken)
    lines = files["csv"].read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("word,pinyin,meaning,hsk") and len(lines) == 3
