"""The study player's data: every cue's words with their pinyin, tones and times, and a card for each
distinct word (pinyin as the subtitles write it, short CC-CEDICT senses, HSK 3.0 level, how often it
occurs). The browser (app/static/player.js) draws captions, transcript and cards from this one JSON,
so hovering a word needs no round trip to the server."""

from __future__ import annotations

import html
import json
from collections import Counter
from pathlib import Path

from app.language.pinyin import TONE_COLOURS, WordPinyin
from app.language.gloss import hsk_level, senses_for_reading
from app.language.subtitles import Cue, Token, cue_tokens

MAX_SENSES = 4  # a card is a glance, not the dictionary page
VIDEO_SUFFIXES = {".mp4", ".m4v", ".webm", ".mov", ".ogv"}  # containers Chromium and Firefox play


def senses(word: WordPinyin) -> list[str]:
    """Short CC-CEDICT senses of the word in the reading the subtitles give it (app.language.gloss)."""
    return senses_for_reading(word.hanzi, word.syllables, word.citation or word.tones, MAX_SENSES)


def word_cards(tokens_by_cue: list[list[Token]]) -> dict[str, dict]:
    """hanzi → {pinyin, tones, senses, hsk, count, first}: `first` is the index of the first cue it is in.
    A word read two ways (还 hái / huán) keeps its first reading on the card."""
    counts = Counter(t.word.hanzi for tokens in tokens_by_cue for t in tokens if t.is_word)
    cards: dict[str, dict] = {}
    for index, tokens in enumerate(tokens_by_cue):
        for token in tokens:
            w = token.word
            if not token.is_word or w.hanzi in cards:
                continue
            cards[w.hanzi] = {"pinyin": w.pinyin, "syllables": list(w.syllables), "tones": list(w.tones),
                              "senses": senses(w), "hsk": hsk_level(w.hanzi), "count": counts[w.hanzi],
                              "first": index}
    return cards


def study_data(cues: list[Cue]) -> dict:
    """Everything the player draws: cues (time, words with syllables and tones, English) and cards."""
    tokens_by_cue = [cue_tokens(c) for c in cues]
    out_cues = []
    for i, (cue, tokens) in enumerate(zip(cues, tokens_by_cue)):
        out_cues.append({"i": i, "start": round(cue.start, 3), "end": round(cue.end, 3), "english": cue.english,
                         "words": [{"h": t.word.hanzi, "s": list(t.word.syllables), "t": list(t.word.tones),
                                    "start": round(t.start, 3), "end": round(t.end, 3)} for t in tokens]})
    return {"cues": out_cues, "cards": word_cards(tokens_by_cue), "colours": TONE_COLOURS}


def words_html(tokens: list[Token]) -> str:
    """Ruby hanzi coloured by tone, each word a hover/click target carrying its hanzi."""
    out = []
    for token in tokens:
        w = token.word
        if not token.is_word:
            out.append(html.escape(w.hanzi))
            continue
        ruby = "".join(f'<ruby class="tone{t}" style="color:{TONE_COLOURS[t]}">{html.escape(c)}'
                       f"<rt>{html.escape(s)}</rt></ruby>" for c, s, t in zip(w.hanzi, w.syllables, w.tones))
        level = hsk_level(w.hanzi)
        out.append(f'<span class="word" data-word="{html.escape(w.hanzi)}" data-hsk="{level or 0}">{ruby}</span>')
    return "".join(out)


def clock(seconds: float) -> str:
    m, s = divmod(seconds, 60)
    return f"{int(m):02d}:{s:05.2f}"


def transcript_html(cues: list[Cue]) -> str:
    """The transcript: one block per cue with its time (click to seek the player), ruby hanzi, English."""
    blocks = []
    for i, cue in enumerate(cues):
        english = f'<span class="english">{html.escape(cue.english)}</span>' if cue.english else ""
        blocks.append(f'<span class="cue" data-i="{i}" data-start="{cue.start:.3f}" data-end="{cue.end:.3f}">'
                      f'<span class="cue-time">{clock(cue.start)}</span>{words_html(cue_tokens(cue))}{english}</span>')
    return f'<div class="zimu-transcript" lang="zh-Hans">{"".join(blocks)}</div>'


def has_video(path: Path) -> bool:
    """Whether the file holds a video stream (cover art in an MP3 is an attached picture, not video)."""
    import av

    try:
        with av.open(str(path)) as container:
            return any(s.type == "video" and not (s.disposition & av.stream.Disposition.attached_pic)
                       for s in container.streams)
    except Exception:  # unreadable files were refused when their audio was decoded
        return False


def media_url(path: Path) -> str:
    """Gradio serves files under its allowed paths at /gradio_api/file=…"""
    from urllib.parse import quote

    return "/gradio_api/file=" + quote(str(path))


def player_html(media: Path, video: bool, cues: list[Cue]) -> str:
    """The player: <video> (or <audio>) with the caption overlay, the controls and the card, and the
    study data as JSON in an attribute that app/static/player.js reads."""
    data = json.dumps(study_data(cues), ensure_ascii=False)
    tag = "video" if video else "audio"
    return (f'<div class="zimu-player" data-kind="{tag}" lang="zh-Hans">'
            f'<div class="zimu-stage"><{tag} class="zimu-media" controls preload="auto" playsinline '
            f'src="{html.escape(media_url(media))}"></{tag}><div class="zimu-captions" aria-live="polite"></div></div>'
            f'<div class="zimu-controls"></div><div class="zimu-card" hidden></div>'
            f'<div class="zimu-saved"></div>'
            f'<div class="zimu-data" hidden data-study="{html.escape(data)}"></div></div>')
