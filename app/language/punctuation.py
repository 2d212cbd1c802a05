"""Punctuation where Whisper leaves none: the one owner of where a transcript's clauses and
sentences end and which mark ends them.

Whisper base often writes Mandarin without a single mark (a 2.3-minute file of real speech: 3 marks
for 50 clause ends), yet its timestamp segments end where a clause or sentence ends (45 of the 48
segment ends in that file stand at a reference clause end). So:

* a **break** goes where a recogniser segment ends, and inside a segment at a pause of
  `INNER_PAUSE` or more; where Whisper put a mark, its mark stays and nothing is added;
* a break is a **sentence end** after a pause of `SENTENCE_PAUSE`, after a sentence-final particle
  (吗, 吧, 呢, 啊 …) and at the transcript's end; else a **clause end** (，);
* a break after a question (below) ends the sentence too;
* a sentence end is **？** for a question: 吗 (or 么, not 什么/怎么/这么…) at the end; 呢 at the end of a sentence holding a question word (什么, 怎么, 谁, 哪, 为什么, 多少, 几);
  a question word as the sentence's last word (怎么样？); A-not-A anywhere in it (是不是, 好不好,
  有没有, 可不可以); **！** after 啊, 呀, 啦, 哇; **。** elsewhere.

Marks are `Word`s of their own, timed at the end of the word before them, so cue building (app.
language.subtitles), the translators' sentences and every view read them like Whisper's own.

`sentences` cuts a transcript's words where these marks (or Whisper's) end a sentence: the unit every
English source translates (app.language.translate.sentences_of) and the English is scored in.
"""

from __future__ import annotations

import re

from app.language.subtitles import Word, is_clitic
from app.language.text import has_cjk

INNER_PAUSE = 1.0  # seconds between two words of one segment that make a clause break
SENTENCE_PAUSE = 0.8  # seconds of pause after which a break ends the sentence
SENTENCE_FINAL = ("吗", "吧", "呢", "啊", "呀", "啦", "嘛", "哇")
EXCLAIMING = ("啊", "呀", "啦", "哇")
QUESTION_WORDS = ("什么", "怎么", "怎样", "为什么", "谁", "哪", "多少", "几")
QUESTION_AT_END = ("怎么样", "怎么办", "什么", "为什么", "谁", "哪儿", "哪里", "多少")
# A-not-A: a verb or adjective, 不 or 没, the same again (是不是, 好不好, 有没有); 可不可以 too.
A_NOT_A = re.compile(r"([\u4e00-\u9fff])[不没]\1|可不可以")
SENTENCE_MARKS = set("。？！…?!")
MARKS = SENTENCE_MARKS | set("，、；：,;:")


def is_question(sentence: str) -> bool:
    """Whether a sentence (hanzi, no closing mark) asks: the rules of the module docstring."""
    text = sentence.rstrip("，、；：,;: ")
    if not text:
        return False
    if text.endswith(("吗", "么")) and not text.endswith(("什么", "怎么", "那么", "这么", "多么")):
        return True
    if text.endswith("呢") and any(w in text for w in QUESTION_WORDS):
        return True
    if text.endswith(QUESTION_AT_END):
        return True
    return bool(A_NOT_A.search(text))


def sentence_mark(sentence: str) -> str:
    """？, ！ or 。 for a sentence (hanzi, no closing mark)."""
    if is_question(sentence):
        return "？"
    return "！" if sentence.endswith(EXCLAIMING) else "。"


def _is_mark(word: Word) -> bool:
    return bool(word.text) and all(c in MARKS for c in word.text)


def lean_back(segments: list[list[Word]]) -> list[list[Word]]:
    """Segments with a particle that opens one (嘞, 了, 的 …: `is_clitic`) moved to the end of the
    segment before it, where it belongs (好 | 嘞 → 好嘞 |)."""
    out = [list(words) for words in segments if words]
    for n in range(1, len(out)):
        while out[n] and is_clitic(out[n][0]) and out[n - 1]:
            out[n - 1].append(out[n].pop(0))
    return [words for words in out if words]


def punctuate(segments: list[list[Word]], final: bool = True) -> list[list[Word]]:
    """The segments with a mark at every break that has none (see the module docstring). `final`:
    the last segment ends the transcript (a sentence end); False for a part still growing."""
    if not any(has_cjk(w.text) for words in segments for w in words):
        return segments  # Latin-script speech keeps Whisper's own punctuation only
    segments = lean_back(segments)
    out: list[list[Word]] = []
    sentence: list[str] = []  # hanzi since the last sentence end
    for n, words in enumerate(segments):
        following = segments[n + 1][0] if n + 1 < len(segments) else None
        piece: list[Word] = []
        for i, word in enumerate(words):
            piece.append(word)
            if _is_mark(word):
                if word.text[-1] in SENTENCE_MARKS:
                    sentence = []
                continue
            sentence.append(word.text)
            after = words[i + 1] if i + 1 < len(words) else following
            if after is not None and _is_mark(after):
                continue  # Whisper's own mark follows
            pause = after.start - word.end if after is not None else None
            segment_end = i + 1 == len(words)
            if not segment_end and (pause is None or pause < INNER_PAUSE or is_clitic(after)):
                continue
            if after is None and not final:
                continue
            text = "".join(sentence)
            ends = after is None or pause >= SENTENCE_PAUSE or text.endswith(SENTENCE_FINAL) or is_question(text)
            mark = sentence_mark(text) if ends else "，"
            piece.append(Word(mark, word.end, word.end))
            if ends:
                sentence = []
        out.append(piece)
    return out


# --- The transcript's sentences --------------------------------------------------------------------
# Where the marks end them. Two fallbacks for text the rules above left unpunctuated (Latin-script
# speech keeps Whisper's marks only): a pause of UNMARKED_SENTENCE_PAUSE between two words with no
# mark between them ends a sentence, and a run-on of LONG_SENTENCE_HANZI characters ends at its next
# clause mark (or, with none, at the next cue), so no translation unit spans a whole minute.

UNMARKED_SENTENCE_PAUSE = 1.0
LONG_SENTENCE_HANZI = 60
_CLOSING = "”’\"')）」』"


def ends_sentence(word: Word) -> bool:
    """Whether a word is, or ends with, a sentence-final mark (a closing quote after it is allowed)."""
    return word.text.rstrip(_CLOSING)[-1:] in SENTENCE_MARKS


def sentences(runs: list[list[Word]]) -> list[list[tuple[int, int]]]:
    """The transcript's sentences as (run, word) indices, every word in exactly one, in order: `runs`
    are its words in order, in runs such as cues (a long unmarked sentence may end at a run's end). A
    sentence runs up to and including its closing mark(s); marks before any word join the first."""
    out: list[list[tuple[int, int]]] = []
    ended, last, length = True, None, 0  # last: the previous word, if spoken with no mark after it
    for r, words in enumerate(runs):
        if out and length >= LONG_SENTENCE_HANZI and last is not None:
            ended = True  # a run-on with no mark at all: the run's end ends it
        for i, word in enumerate(words):
            mark = word.is_punct
            paused = last is not None and word.start - last.end >= UNMARKED_SENTENCE_PAUSE
            if not mark and (ended or paused or not out):
                out.append([])
                ended, length = False, 0
            if not out:
                out.append([])
            out[-1].append((r, i))
            if mark:
                last = None
                ended = ended or ends_sentence(word) or (length >= LONG_SENTENCE_HANZI and word.text[-1] in MARKS)
            else:
                last = word
                length += sum(1 for c in word.text if has_cjk(c))
                ended = ended or ends_sentence(word)
    return out
