"""Subtitle cues and subtitle files: the one place that decides how lines break and how they are written.

Cues are built from timed jieba words: a line breaks only between words, holds at most
`max_chars` characters, ends at sentence punctuation or a pause, and lasts long enough to read.
Files are written by pysubs2 (SRT, WebVTT, ASS); TXT is the plain transcript.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pysubs2

from app.text import is_punctuation

LINE_KINDS = ("hanzi", "pinyin", "english")
FORMATS = ("srt", "vtt", "ass", "txt")
SENTENCE_END = set("。！？…")
CLAUSE_END = set("，、；：")


@dataclass
class Word:
    """A jieba word of the final (Simplified) transcript with its time span in seconds."""

    text: str
    start: float
    end: float

    @property
    def is_punct(self) -> bool:
        return all(is_punctuation(c) for c in self.text)


@dataclass
class Cue:
    start: float
    end: float
    words: list[Word]
    pinyin: str = ""
    english: str = ""

    @property
    def hanzi(self) -> str:
        return "".join(w.text for w in self.words)

    def lines(self, kinds: tuple[str, ...] | list[str]) -> list[str]:
        values = {"hanzi": self.hanzi, "pinyin": self.pinyin, "english": self.english}
        return [values[k] for k in kinds if values[k]]


@dataclass
class CueRules:
    max_chars: int = 16  # per Chinese line, the common broadcast limit for CJK subtitles
    max_duration: float = 7.0
    pause_break: float = 0.8  # a silence this long starts a new cue
    min_duration: float = 1.0
    chars_per_second: float = 6.0  # reading pace target for beginners; cues are lengthened into gaps
    clause_break_at: int = 10  # break after a comma once the line is this long
    extra: dict = field(default_factory=dict)


def _visible_len(words: list[Word]) -> int:
    return sum(len(w.text) for w in words if not w.is_punct)


def build_cues(segments: list[list[Word]], rules: CueRules | None = None) -> list[Cue]:
    """Group timed words into cues. Each inner list is one recogniser segment (never merged)."""
    rules = rules or CueRules()
    groups: list[list[Word]] = []
    for words in segments:
        line: list[Word] = []
        for word in words:
            if word.is_punct:
                if line:
                    line.append(word)  # punctuation never starts a line
                    last = word.text[-1]
                    if last in SENTENCE_END or (last in CLAUSE_END and _visible_len(line) >= rules.clause_break_at):
                        groups.append(line)
                        line = []
                elif groups and groups[-1]:
                    groups[-1].append(word)
                continue
            if line:
                spoken = [w for w in line if not w.is_punct]
                too_long = _visible_len(line) + len(word.text) > rules.max_chars
                paused = word.start - spoken[-1].end >= rules.pause_break
                too_slow = word.end - spoken[0].start > rules.max_duration
                if too_long or paused or too_slow:
                    groups.append(line)
                    line = []
            line.append(word)
        if line:
            groups.append(line)
    cues = []
    for group in groups:
        spoken = [w for w in group if not w.is_punct] or group
        cues.append(Cue(start=spoken[0].start, end=spoken[-1].end, words=group))
    return _fix_timing(cues, rules)


def _fix_timing(cues: list[Cue], rules: CueRules) -> list[Cue]:
    """Monotonic, non-overlapping times, each cue stretched (into silence only) toward a readable length."""
    previous_end = 0.0
    for i, cue in enumerate(cues):
        cue.start = max(cue.start, previous_end)
        cue.end = max(cue.end, cue.start + 0.1)
        wanted = max(rules.min_duration, _visible_len(cue.words) / rules.chars_per_second)
        limit = cues[i + 1].start if i + 1 < len(cues) else cue.start + wanted
        if cue.end - cue.start < wanted:
            cue.end = max(cue.end, min(cue.start + wanted, limit))
        if i + 1 < len(cues) and cue.end > cues[i + 1].start:
            # Recogniser spans can overlap by a few ms; the next cue starts where this one ends.
            cues[i + 1].start = cue.end
        previous_end = cue.end
    return cues


def to_ssa(cues: list[Cue], kinds: tuple[str, ...] | list[str]) -> pysubs2.SSAFile:
    subs = pysubs2.SSAFile()
    style = subs.styles["Default"]
    style.fontname = "Noto Sans CJK SC"
    style.fontsize = 22
    for cue in cues:
        text = r"\N".join(cue.lines(kinds))
        if text:
            subs.append(pysubs2.SSAEvent(start=round(cue.start * 1000), end=round(cue.end * 1000), text=text))
    return subs


def to_text(cues: list[Cue], kinds: tuple[str, ...] | list[str]) -> str:
    """Plain transcript: the chosen lines of each cue, a blank line between cues."""
    return "\n\n".join("\n".join(cue.lines(kinds)) for cue in cues if cue.lines(kinds)) + "\n"


def write_subtitles(cues: list[Cue], path: str | Path, kinds=("hanzi", "pinyin", "english"), fmt: str | None = None) -> Path:
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise ValueError(f"unknown subtitle format {fmt!r}; choose from {', '.join(FORMATS)}")
    kinds = [k for k in kinds if k in LINE_KINDS] or ["hanzi"]
    if fmt == "txt":
        path.write_text(to_text(cues, kinds), encoding="utf-8")
    else:
        to_ssa(cues, kinds).save(str(path), format_=fmt, encoding="utf-8")
    return path
