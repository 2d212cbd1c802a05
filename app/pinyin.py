"""Pinyin with tone marks, word by word: jieba segmentation + pypinyin's phrase dictionary.

Looking words up as whole phrases is what gets multi-reading characters right
(银行 yínháng, 重庆 chóngqìng, 长大 zhǎngdà); character by character they would be wrong.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from pypinyin import Style, pinyin

from app.text import has_cjk, split_words

# A colour per tone, the convention most learner dictionaries use (Pleco-like); neutral is grey.
TONE_COLOURS = {1: "#e53935", 2: "#f29900", 3: "#43a047", 4: "#1e88e5", 5: "#8a8a8a"}


@dataclass(frozen=True)
class WordPinyin:
    """One jieba word with one pinyin syllable per hanzi (empty for punctuation / Latin)."""

    hanzi: str
    syllables: tuple[str, ...]  # with tone marks: ("yín", "háng")
    tones: tuple[int, ...]  # 1-4, 5 for neutral

    @property
    def pinyin(self) -> str:
        return "".join(self.syllables) if self.syllables else self.hanzi


def word_pinyin(word: str) -> WordPinyin:
    if not has_cjk(word):
        return WordPinyin(word, (), ())
    marked = [s[0] for s in pinyin(word, style=Style.TONE, errors="ignore")]
    numbered = [s[0] for s in pinyin(word, style=Style.TONE3, neutral_tone_with_five=True, errors="ignore")]
    tones = tuple(int(n[-1]) if n and n[-1].isdigit() else 5 for n in numbered)
    return WordPinyin(word, tuple(marked), tones)


def words_with_pinyin(text: str) -> list[WordPinyin]:
    return [word_pinyin(w) for w in split_words(text)]


def pinyin_line(text: str) -> str:
    """'我在银行工作。' → 'wǒ zài yínháng gōngzuò.' (syllables of a word joined, words spaced)."""
    return pinyin_of_words(split_words(text))


def pinyin_of_words(words: list[str]) -> str:
    """Pinyin line of already segmented words (the cue's own words, so pinyin matches the hanzi)."""
    parts: list[str] = []
    for w in map(word_pinyin, words):
        if w.syllables:
            parts.append(w.pinyin)
        elif w.hanzi.strip():
            # Punctuation sticks to the previous word, Latin words stand alone.
            mark = _ascii_punct(w.hanzi)
            if parts and all(not c.isalnum() for c in w.hanzi):
                parts[-1] += mark
            else:
                parts.append(mark)
    return " ".join(parts)


_PUNCT_MAP = str.maketrans({"，": ",", "。": ".", "？": "?", "！": "!", "：": ":", "；": ";", "、": ",",
                            "“": '"', "”": '"', "（": "(", "）": ")"})


def _ascii_punct(text: str) -> str:
    return text.translate(_PUNCT_MAP)


def tone_numbers(text: str) -> list[int]:
    """Tone of every hanzi in order (5 = neutral), after the dictionary's phrase readings."""
    return [t for w in words_with_pinyin(text) for t in w.tones]


def tone_html(text: str) -> str:
    """Hanzi with ruby pinyin, each syllable coloured by tone (for the UI)."""
    out = []
    for w in words_with_pinyin(text):
        if not w.syllables:
            out.append(html.escape(w.hanzi))
            continue
        chars = [c for c in w.hanzi]
        # pypinyin gives one syllable per hanzi; anything else (e.g. mixed digits) falls back plain.
        if len(chars) != len(w.syllables):
            out.append(f"<ruby>{html.escape(w.hanzi)}<rt>{html.escape(w.pinyin)}</rt></ruby>")
            continue
        spans = "".join(
            f'<ruby class="tone{t}" style="color:{TONE_COLOURS[t]}">{html.escape(c)}<rt>{html.escape(s)}</rt></ruby>'
            for c, s, t in zip(chars, w.syllables, w.tones)
        )
        out.append(f'<span class="word">{spans}</span>')
    return "".join(out)


@dataclass(frozen=True)
class Syllable:
    """One hanzi's reading split the way a learner's mistakes split: initial, final, tone.

    `tone` is the citation tone from the phrase dictionary; `spoken_tone` is what a native speaker
    says after tone sandhi (3-3 → 2-3, 一 and 不 changes), which is what pitch is compared with.
    """

    hanzi: str
    marked: str  # "hǎo"
    initial: str  # "h"; "" for zero-initial syllables (ài, yī: strict pinyin initials)
    final: str  # "ao"
    tone: int
    spoken_tone: int


def syllables(text: str) -> list[Syllable]:
    """Syllables of every hanzi in `text`, read word by word (jieba) through the phrase dictionary."""
    from pypinyin import lazy_pinyin

    out: list[Syllable] = []
    for word in split_words(text):
        hanzi = [c for c in word if has_cjk(c)]
        if not hanzi or len(hanzi) != len(word):
            # Mixed tokens (e.g. "3个") — read the hanzi alone.
            word = "".join(hanzi)
            if not word:
                continue
        marked = lazy_pinyin(word, style=Style.TONE)
        numbered = lazy_pinyin(word, style=Style.TONE3, neutral_tone_with_five=True)
        initials = lazy_pinyin(word, style=Style.INITIALS, strict=True)
        finals = lazy_pinyin(word, style=Style.FINALS, strict=True)
        if not (len(word) == len(marked) == len(numbered) == len(initials) == len(finals)):
            continue
        for c, m, n, i, f in zip(word, marked, numbered, initials, finals):
            tone = int(n[-1]) if n[-1].isdigit() else 5
            out.append(Syllable(c, m, i, f, tone, tone))
    return _apply_sandhi(out)


def _apply_sandhi(sylls: list[Syllable]) -> list[Syllable]:
    """Tone sandhi over the whole utterance (word boundaries do not stop 3-3 in fluent speech)."""
    from dataclasses import replace

    tones = [s.tone for s in sylls]
    spoken = list(tones)
    for i, s in enumerate(sylls):
        nxt = tones[i + 1] if i + 1 < len(tones) else None
        if s.hanzi == "不" and nxt == 4:
            spoken[i] = 2
        elif s.hanzi == "一" and nxt is not None and s.tone == 1:
            prev = sylls[i - 1].hanzi if i else ""
            if not (prev and (prev in "第十" or prev.isdigit())):  # ordinals and numbers keep yī
                spoken[i] = 2 if nxt == 4 else 4 if nxt in (1, 2, 3) else 1
    # 3-3 → 2-3: in a run of third tones every one but the last rises.
    i = 0
    while i < len(spoken):
        if spoken[i] == 3:
            j = i
            while j + 1 < len(spoken) and spoken[j + 1] == 3:
                j += 1
            for k in range(i, j):
                spoken[k] = 2
            i = j + 1
        else:
            i += 1
    return [replace(s, spoken_tone=t) for s, t in zip(sylls, spoken)]
