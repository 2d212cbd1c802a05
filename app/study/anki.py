"""Anki decks (.apkg through genanki) and CSV for Pleco or Anki, from a transcript and its audio.

Two kinds of deck:
- sentence mining: one note per cue (hanzi, pinyin, English, the cue's audio clip);
- words: one note per word (hanzi, pinyin, CC-CEDICT senses, HSK 3.0 level, the word's own audio in a
  synthesised native voice, and the sentence it came from with its pinyin, English and audio clip).
Clips are MP3 files named after the deck and the cue, so decks from different videos never collide in
Anki's one media folder. Note GUIDs come from the deck name and the text, so importing a deck again
updates its notes instead of adding copies.
"""

from __future__ import annotations

import csv
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.speech.audio import SAMPLE_RATE, write_audio
from app.language.pinyin import tone_html, word_pinyin
from app.language.subtitles import Cue

CLIP_BEFORE, CLIP_AFTER = 0.2, 0.3  # seconds around a cue: the first and last syllable are not clipped
CSS = (".card { font-family: 'Noto Sans CJK SC', sans-serif; font-size: 22px; text-align: center; }\n"
       ".hanzi { font-size: 42px; } rt { font-size: 0.45em; } .meta { color: #777; font-size: 16px; }\n"
       ".english { font-size: 20px; color: #333; }")

# Fixed ids: Anki recognises a note type by its id, so every deck we write shares the same two types.
SENTENCE_MODEL_ID, WORD_MODEL_ID = 1_607_392_319, 1_607_392_320
SENTENCE_FIELDS = ["Hanzi", "Pinyin", "English", "Audio", "Ruby", "Source"]
WORD_FIELDS = ["Word", "Pinyin", "Meaning", "HSK", "Sentence", "SentencePinyin", "SentenceEnglish", "Audio",
               "Ruby", "SentenceRuby", "Source", "WordAudio"]


def _models():
    import genanki

    sentence = genanki.Model(
        SENTENCE_MODEL_ID, "Zimu sentence", fields=[{"name": f} for f in SENTENCE_FIELDS], css=CSS,
        templates=[{"name": "Listen and read",
                    "qfmt": '<div class="hanzi">{{Hanzi}}</div>{{Audio}}',
                    "afmt": '<div class="hanzi">{{Ruby}}</div>{{Audio}}<hr id=answer>'
                            '<div class="english">{{English}}</div><div class="meta">{{Source}}</div>'}])
    word = genanki.Model(
        WORD_MODEL_ID, "Zimu word", fields=[{"name": f} for f in WORD_FIELDS], css=CSS,
        templates=[{"name": "Recognise",
                    "qfmt": '<div class="hanzi">{{Word}}</div><div>{{Sentence}}</div>',
                    "afmt": '<div class="hanzi">{{Ruby}}</div><div>{{Pinyin}} · {{HSK}}</div>{{WordAudio}}<hr id=answer>'
                            '<div class="english">{{Meaning}}</div><div>{{SentenceRuby}}</div>'
                            '<div class="english">{{SentenceEnglish}}</div>{{Audio}}'
                            '<div class="meta">{{Source}}</div>'}])
    return sentence, word


@dataclass
class Note:
    fields: dict[str, str]
    clip: Path | None  # the audio file its [sound:] field names
    word_audio: Path | None = None  # the word spoken alone (word notes)


def word_audio(word, media: Path, title: str) -> Path | None:
    """The word (a WordPinyin, in its sentence's reading) spoken by the default native voice as MP3, or
    None where no voice is available (the note keeps its sentence clip)."""
    from app.speech import synthesis

    if synthesis.unavailable_reason() or not synthesis.offered_voices():
        return None
    path = media / f"{_prefix(title)}-w{zlib.crc32((word.hanzi + word.pinyin).encode('utf-8')):08x}.mp3"
    if not path.is_file():
        audio = synthesis.speak_phonemes(synthesis.word_phonemes(word.hanzi, word.syllables, word.tones))
        write_audio(audio, path, rate=synthesis.SAMPLE_RATE)
    return path


def clip(audio: np.ndarray, cue: Cue, path: Path) -> Path:
    a = max(0, int((cue.start - CLIP_BEFORE) * SAMPLE_RATE))
    b = min(audio.size, int((cue.end + CLIP_AFTER) * SAMPLE_RATE))
    return write_audio(audio[a:b], path)


def _prefix(title: str) -> str:
    """Clip names: the deck's checksum keeps them apart from other decks' in Anki's media folder."""
    return f"zimu-{zlib.crc32(title.encode('utf-8')):08x}"


def sentence_notes(cues: list[Cue], audio: np.ndarray, media: Path, title: str) -> list[Note]:
    """One note per cue with its clip (written into `media`)."""
    media.mkdir(parents=True, exist_ok=True)
    notes = []
    for n, cue in enumerate(cues, 1):
        path = clip(audio, cue, media / f"{_prefix(title)}-{n:04d}.mp3")
        notes.append(Note({"Hanzi": cue.hanzi, "Pinyin": cue.pinyin, "English": cue.english,
                           "Audio": f"[sound:{path.name}]", "Ruby": tone_html(cue.hanzi), "Source": title}, path))
    return notes


def first_cue(cues: list[Cue], word: str) -> int | None:
    """The first cue in which `word` is one of the words (not merely a substring of another word)."""
    from app.language.subtitles import cue_tokens

    for i, cue in enumerate(cues):
        if word in cue.hanzi and any(t.word.hanzi == word for t in cue_tokens(cue)):
            return i
    return None


def word_notes(cues: list[Cue], words: list[tuple[str, int | None]], audio: np.ndarray, media: Path,
               title: str) -> list[Note]:
    """One note per (word, cue index): the word's card and its sentence (the given cue, else the first
    cue it occurs in) with that sentence's clip. Words in no cue are skipped."""
    from app.language.subtitles import cue_tokens
    from app.study.player import senses
    from app.language.gloss import hsk_level

    media.mkdir(parents=True, exist_ok=True)
    notes, clips = [], {}
    for word, index in words:
        if index is None or not (0 <= index < len(cues)) or word not in cues[index].hanzi:
            index = first_cue(cues, word)
        if index is None:
            continue
        cue = cues[index]
        if index not in clips:
            clips[index] = clip(audio, cue, media / f"{_prefix(title)}-{index + 1:04d}.mp3")
        # The word as its sentence reads it (还 in 还钱 is huán), not as it reads alone.
        reading = next((t.word for t in cue_tokens(cue) if t.word.hanzi == word), None) or word_pinyin(word)
        level = hsk_level(word)
        spoken = word_audio(reading, media, title)
        notes.append(Note({"Word": word, "Pinyin": reading.pinyin, "Meaning": "; ".join(senses(reading)),
                           "HSK": f"HSK {level if level < 7 else '7-9'}" if level else "",
                           "Sentence": cue.hanzi, "SentencePinyin": cue.pinyin, "SentenceEnglish": cue.english,
                           "Audio": f"[sound:{clips[index].name}]", "Ruby": tone_html(word),
                           "SentenceRuby": tone_html(cue.hanzi), "Source": title,
                           "WordAudio": f"[sound:{spoken.name}]" if spoken else ""}, clips[index], spoken))
    return notes


def vocabulary(cues: list[Cue], min_level: int) -> list[tuple[str, int]]:
    """Each distinct word at or above HSK `min_level` (a word on no HSK list counts as above every level,
    as the glosses count it; names and numbers are not words to learn and are left out) with its
    first cue, in order of appearance."""
    from app.language.subtitles import cue_tokens
    from app.language.gloss import hsk_level

    seen: dict[str, int] = {}
    for i, cue in enumerate(cues):
        for token in cue_tokens(cue):
            word = token.word.hanzi
            if not token.is_word or word in seen:
                continue
            level = hsk_level(word)
            if level is None and (any(s[:1].isupper() for s in token.word.syllables) or not _in_cedict(word)):
                continue
            if (level or 10) >= min_level:
                seen[word] = i
    return list(seen.items())


def _in_cedict(word: str) -> bool:
    from app.language.cedict import is_word

    return is_word(word)


def write_apkg(notes: list[Note], path: Path, title: str, kind: str) -> Path:
    """`kind`: "sentence" or "word" (the note type). The deck's id comes from its title: the same video
    exported again is the same deck in Anki."""
    import genanki

    sentence_model, word_model = _models()
    model, names = (sentence_model, SENTENCE_FIELDS) if kind == "sentence" else (word_model, WORD_FIELDS)
    deck = genanki.Deck(zlib.crc32(f"zimu:{title}".encode("utf-8")) + (1 << 32), f"Zimu::{title}")
    for note in notes:
        key = note.fields[names[0]] + "\x1f" + note.fields.get("Sentence", "")
        deck.add_note(genanki.Note(model=model, fields=[note.fields[n] for n in names],
                                   guid=genanki.guid_for(title, kind, key), tags=["zimu", kind]))
    media = sorted({str(p) for n in notes for p in (n.clip, n.word_audio) if p is not None})
    genanki.Package(deck, media_files=media).write_to_file(str(path))
    return path


def write_csv(notes: list[Note], path: Path, kind: str) -> Path:
    """Pleco reads the first three columns (hanzi, pinyin, meaning); Anki maps every column. Rich
    fields (ruby HTML) are left out: this is the plain-text copy."""
    columns = (["Hanzi", "Pinyin", "English", "Audio", "Source"] if kind == "sentence" else
               ["Word", "Pinyin", "Meaning", "HSK", "Sentence", "SentencePinyin", "SentenceEnglish", "Audio", "Source",
                "WordAudio"])
    with open(path, "w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow([c.lower() for c in columns])
        for note in notes:
            out.writerow([note.fields[c].replace("\n", " ") for c in columns])
    return path


def export_deck(cues: list[Cue], audio: np.ndarray, folder: Path, stem: str, title: str,
                words: list[tuple[str, int | None]] | None = None) -> dict[str, Path]:
    """The .apkg and .csv of a sentence deck (`words` None) or a word deck, and the folder of their clips
    (folder/STEM-media: the CSV's [sound:] files, which Anki wants copied into its media folder)."""
    media = folder / f"{stem}-media"
    if words is None:
        notes, kind = sentence_notes(cues, audio, media, title), "sentence"
    else:
        notes, kind = word_notes(cues, words, audio, media, title), "word"
    return {"apkg": write_apkg(notes, folder / f"{stem}.apkg", title, kind),
            "csv": write_csv(notes, folder / f"{stem}.csv", kind), "media": media}
