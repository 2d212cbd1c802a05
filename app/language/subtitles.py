"""Subtitle cues and subtitle files: the one place that decides how lines break, how cues are
timed, how they are written, and how any subtitle file is checked against those rules.

The rules are those of Netflix's Simplified Chinese Timed Text Style Guide (with its General
Requirements), which professional subtitlers and Subtitle Edit's "Netflix quality check" use:

* a hanzi line holds at most 16 characters, punctuation included; a cue at most 2 lines, the second
  only when the text does not fit one, broken between jieba words and balanced;
* reading speed at most 9 characters a second; a cue lasts from 5/6 s to 7 s;
* at least 2 frames between cues, and a gap shorter than half a second closed to exactly 2 frames
  (FRAME_RATE: 25 fps, so every time is a whole frame of 40 ms, exact in SRT, WebVTT and ASS);
* no orphan cue of one or two hanzi (it joins a neighbour);
* no comma or full stop at the end of a line (the guide puts a space there; a space at the end of
  a line shows as nothing, so it is dropped); ？ and ！ stay. `CueRules.keep_punctuation` keeps it all.

`Cue.hanzi` stays the full text with every punctuation mark (the UI, the translator's sentence
grouping and the TXT transcript read it); end-of-line punctuation is dropped only when SRT, WebVTT
and ASS files are written. In those files a cue is laid out line by line: each hanzi line followed
by its own pinyin line, the English line last.

Files are written by pysubs2 (SRT, WebVTT, ASS); TXT is the plain transcript, punctuation kept.
`check_file` lists every rule a subtitle file breaks (`python -m app check`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pysubs2

from app.base.errors import UserError
from app.language.text import has_cjk, is_punctuation

if TYPE_CHECKING:
    from app.language.pinyin import WordPinyin

LINE_KINDS = ("hanzi", "pinyin", "english")
FORMATS = ("srt", "vtt", "ass", "txt")
SENTENCE_END = set("。！？…")
CLAUSE_END = set("，、；：")
# Dropped from the end of a written line (the guide's comma and full stop; 、 is a comma too).
LINE_END_DROPPED = "，、。,."
# Inside a written line the guide's comma and full stop are a space.
INLINE_AS_SPACE = "，。"
# Particles that lean on the word before them (好嘞, 见了, 你的): no cue, line or clause starts with
# one, however long Whisper's word times make the pause before it.
CLITICS = frozenset("了的吗呢吧嘞啊呀啦着过们得地么嘛哇")
# A pause this long between two words makes a better place to cut a cue than a plain word boundary.
CUE_PAUSE = 0.3
# The frame rate times are counted in. 25 fps makes a frame 40 ms, so 2 frames are 80 ms in every
# format (SRT and WebVTT count milliseconds, ASS centiseconds); at 24 fps they would round to 83 or 84.
FRAME_RATE = 25.0
ORPHAN_HANZI = 2  # a cue of this many hanzi or fewer is an orphan
# An orphan joins a neighbour only across a pause shorter than this: after a longer one, the
# joined cue would show words seconds before they are said (subtitles are timed to the audio).
ORPHAN_JOIN_GAP = 1.0


@dataclass
class Word:
    """A jieba word of the final (Simplified) transcript with its time span in seconds."""

    text: str
    start: float
    end: float

    @functools.cached_property
    def is_punct(self) -> bool:  # cached: cue building asks it of every word many times over
        return all(is_punctuation(c) for c in self.text)


@dataclass
class Cue:
    start: float
    end: float
    words: list[Word]
    pinyin: str = ""  # the whole cue's pinyin line (the UI's); files compute it per hanzi line
    english: str = ""
    split: int = 0  # index into `words` where the second hanzi line starts; 0 = one line

    @property
    def hanzi(self) -> str:
        """The full text, every punctuation mark kept."""
        return "".join(w.text for w in self.words)

    @property
    def line_words(self) -> list[list[Word]]:
        if 0 < self.split < len(self.words):
            return [self.words[:self.split], self.words[self.split:]]
        return [self.words]

    @property
    def hanzi_lines(self) -> list[str]:
        """The 1 or 2 hanzi lines as subtitles break them, punctuation kept."""
        return ["".join(w.text for w in line) for line in self.line_words]

    def lines(self, kinds: tuple[str, ...] | list[str]) -> list[str]:
        """One line per kind, unbroken (the transcript's view: TXT, the UI)."""
        values = {"hanzi": self.hanzi, "pinyin": self.pinyin, "english": self.english}
        return [values[k] for k in kinds if values[k]]


@dataclass
class CueRules:
    max_chars: int = 16  # per hanzi line, punctuation included
    max_lines: int = 2
    max_cps: float = 9.0  # the guide's reading speed limit for adult programmes
    # Learners read slower: where the silence after a cue allows, it stays up this long.
    target_cps: float = 6.0
    min_duration: float = 5 / 6
    max_duration: float = 7.0
    fps: float = FRAME_RATE
    min_gap_frames: int = 2
    pause_break: float = 0.8  # a silence this long starts a new cue
    keep_punctuation: bool = False  # keep a comma or full stop at the end of a written line

    @property
    def bridge_frames(self) -> int:
        """Gaps shorter than this many frames (half a second, rounded as Subtitle Edit does) are
        closed to `min_gap_frames`."""
        return math.floor(self.fps / 2 + 0.5)


# ---- building cues -------------------------------------------------------------------------------

def hanzi_count(text: str) -> int:
    return sum(1 for c in text if has_cjk(c))


def _written(words: list[Word], rules: CueRules) -> list[Word]:
    """A line's words as a file shows them: without a closing comma or full stop unless kept."""
    if rules.keep_punctuation:
        return words
    end = len(words)
    while end > 0 and words[end - 1].is_punct and all(c in LINE_END_DROPPED for c in words[end - 1].text):
        end -= 1
    return words[:end]


def written_text(words: list[Word], rules: CueRules) -> str:
    """A line as a file shows it: no comma or full stop at its end, a space for one inside it."""
    text = _shown("".join(w.text for w in words), rules)
    if rules.keep_punctuation:
        return text
    return "".join(" " if c in INLINE_AS_SPACE else c for c in text)


def is_clitic(word: Word) -> bool:
    return word.text in CLITICS


def _shown(text: str, rules: CueRules) -> str:
    return text if rules.keep_punctuation else text.rstrip(LINE_END_DROPPED + " ")


def line_split(words: list[Word], rules: CueRules) -> int | None:
    """Where the second line starts (0: one line is enough), or None when two lines can't hold it.
    The break falls between jieba words, never before punctuation; the two lines as even as can be,
    but a break after a comma (the guide: "after punctuation marks") worth up to 6 characters of
    unevenness; on a tie the longer line below."""
    full = "".join(w.text for w in words)
    if len(_shown(full, rules)) <= rules.max_chars:
        return 0
    if rules.max_lines < 2:
        return None
    best, best_cost, at = None, None, 0
    for i in range(1, len(words)):
        at += len(words[i - 1].text)
        if words[i].is_punct or is_clitic(words[i]):
            continue
        top, bottom = len(_shown(full[:at], rules)), len(_shown(full[at:], rules))
        if top > rules.max_chars or bottom > rules.max_chars:
            continue
        after_clause = words[i - 1].text[-1] in CLAUSE_END
        cost = (abs(top - bottom) - (6 if after_clause else 0), top > bottom)
        if best_cost is None or cost < best_cost:
            best, best_cost = i, cost
    return best


def _spoken_span(words: list[Word]) -> float:
    spoken = [w for w in words if not w.is_punct] or words
    return spoken[-1].end - spoken[0].start


def _fits(words: list[Word], rules: CueRules) -> bool:
    return line_split(words, rules) is not None and _spoken_span(words) <= rules.max_duration


def _sentences(words: list[Word], rules: CueRules) -> list[list[Word]]:
    """One recogniser segment cut after sentence-final punctuation and at pauses."""
    pieces: list[list[Word]] = []
    line: list[Word] = []
    for word in words:
        if word.is_punct:
            if line:
                line.append(word)
                if word.text[-1] in SENTENCE_END:
                    pieces.append(line)
                    line = []
            elif pieces:
                pieces[-1].append(word)  # punctuation never starts a cue
            continue
        spoken = [w for w in line if not w.is_punct]
        if spoken and word.start - spoken[-1].end >= rules.pause_break and not is_clitic(word):
            pieces.append(line)
            line = []
        line.append(word)
    if line:
        pieces.append(line)
    return pieces


def _split_sentence(words: list[Word], rules: CueRules) -> list[list[Word]]:
    """A sentence too long for one cue cut into the fewest cues that fit, at word boundaries:
    after a comma where possible, as even as can be, no orphan unless nothing else fits."""
    if _fits(words, rules):
        return [words]
    starts = [i for i in range(1, len(words)) if not words[i].is_punct]
    for strict in (True, False):
        allowed = [i for i in starts if not (strict and is_clitic(words[i]))]
        pieces = _best_partition(words, [0] + allowed, rules, strict)
        if pieces:
            return pieces
    return [words]  # unreachable: single words are always allowed when not strict


def _best_partition(words: list[Word], starts: list[int], rules: CueRules, strict: bool) -> list[list[Word]] | None:
    """Dynamic programme over the allowed cue starts: fewest cues, then the breaks in order of
    strength (fewest that are not after a comma or other mark, then fewest of those not at a pause
    of `CUE_PAUSE`), then the most even lengths (sum of squares)."""
    ends = starts[1:] + [len(words)]
    best: dict[int, tuple] = {0: ((0, 0, 0, 0), [])}
    for a in starts:
        if a not in best:
            continue
        (count, bad, weak, square), cuts = best[a]
        for b in ends:
            if b <= a:
                continue
            piece = words[a:b]
            spoken = [w for w in piece if not w.is_punct]
            if len(spoken) > 1 and (sum(len(w.text) for w in spoken) > rules.max_lines * rules.max_chars
                                    or spoken[-1].end - spoken[0].start > rules.max_duration):
                break  # longer pieces fit even less: this keeps a long unpunctuated window cheap
            if not (_fits(piece, rules) or (len(spoken) == 1 and not strict)):
                continue
            if strict and hanzi_count("".join(w.text for w in piece)) <= ORPHAN_HANZI:
                continue
            clause = b == len(words) or piece[-1].text[-1] in CLAUSE_END | SENTENCE_END
            paused = clause or words[b].start - spoken[-1].end >= CUE_PAUSE
            cost = (count + 1, bad + (0 if clause else 1), weak + (0 if paused else 1),
                    square + len(written_text(piece, rules)) ** 2)
            if b not in best or cost < best[b][0]:
                best[b] = (cost, cuts + [b])
    if len(words) not in best:
        return None
    bounds = [0] + best[len(words)][1]
    return [words[a:b] for a, b in zip(bounds, bounds[1:])]


def _is_orphan(words: list[Word]) -> bool:
    return 0 < hanzi_count("".join(w.text for w in words)) <= ORPHAN_HANZI


def _join_orphans(pieces: list[list[Word]], rules: CueRules) -> list[list[Word]]:
    """A cue of one or two hanzi ("的。", "好。") joins the neighbour it is closer to in time, when
    the pause between them is short and the joined cue still fits; otherwise it stays (the checker
    names it)."""
    pieces = [list(p) for p in pieces]
    i = 0
    while i < len(pieces):
        if not _is_orphan(pieces[i]):
            i += 1
            continue
        options = []
        for at in (i - 1, i):
            if 0 <= at and at + 1 < len(pieces):
                pause = _gap(pieces[at], pieces[at + 1])
                if pause < ORPHAN_JOIN_GAP and _fits(pieces[at] + pieces[at + 1], rules):
                    options.append((pause, at))
        if not options:
            i += 1
            continue
        _, at = min(options)
        pieces[at:at + 2] = [pieces[at] + pieces[at + 1]]
        i = at  # the joined cue is looked at again (it may still be short)
    return pieces


def _gap(first: list[Word], second: list[Word]) -> float:
    a = [w for w in first if not w.is_punct] or first
    b = [w for w in second if not w.is_punct] or second
    return b[0].start - a[-1].end


def build_cues(segments: list[list[Word]], rules: CueRules | None = None) -> list[Cue]:
    """Group timed words into cues: each recogniser segment cut into sentences (at sentence-final
    punctuation and pauses), a sentence too long for one cue of two lines cut into several, orphans
    joined to a neighbour (also across segments), then the lines broken and the times fixed."""
    rules = rules or CueRules()
    pieces: list[list[Word]] = []
    for words in segments:
        for sentence in _sentences(words, rules):
            if sentence[0].is_punct and pieces:
                pieces[-1] += sentence  # a segment starting with punctuation: it ends the last cue
            else:
                pieces += _split_sentence(sentence, rules)
    cues = []
    for group in _join_orphans(pieces, rules):
        spoken = [w for w in group if not w.is_punct] or group
        cues.append(Cue(start=spoken[0].start, end=spoken[-1].end, words=group,
                        split=line_split(group, rules) or 0))
    return _fix_timing(cues, rules)


# ---- timing --------------------------------------------------------------------------------------

def reading_chars(cue: Cue, rules: CueRules) -> int:
    """Characters a reader reads: the hanzi lines as written, punctuation included, spaces not."""
    return sum(len(written_text(line, rules).replace(" ", "")) for line in cue.line_words)


def _fix_timing(cues: list[Cue], rules: CueRules) -> list[Cue]:
    """Times in whole frames: each cue covers its speech, lasts 5/6 s to 7 s and long enough to read
    (stretched into the silence after it, and only if that is not enough into the silence before),
    2 frames apart from the next, a gap under half a second closed to exactly 2 frames."""
    fps, gap = rules.fps, rules.min_gap_frames
    starts = [math.floor(c.start * fps + 1e-6) for c in cues]
    ends = [math.ceil(c.end * fps - 1e-6) for c in cues]
    shortest, longest = math.ceil(rules.min_duration * fps - 1e-6), math.floor(rules.max_duration * fps + 1e-6)
    for i, cue in enumerate(cues):
        previous = ends[i - 1] if i else -gap
        starts[i] = max(starts[i], previous + gap, 0)
        ends[i] = min(max(ends[i], starts[i] + 1), starts[i] + longest)
        chars = reading_chars(cue, rules)
        needed = max(shortest, math.ceil(chars / rules.max_cps * fps - 1e-6))
        wanted = max(needed, math.ceil(chars / rules.target_cps * fps - 1e-6))
        limit = starts[i + 1] - gap if i + 1 < len(cues) else math.inf
        if ends[i] - starts[i] < wanted:  # into the silence after
            ends[i] = max(ends[i], min(starts[i] + min(wanted, longest), limit))
        if ends[i] - starts[i] < needed:  # the audio leaves no other way: into the silence before
            start = max(previous + gap, ends[i] - needed)
            if i and start - previous < rules.bridge_frames:
                start = previous + gap  # a gap under half a second is closed, not left at 3-12 frames
            starts[i] = max(start, ends[i] - longest)
        if i + 1 < len(cues):
            if ends[i] > limit:  # recogniser spans overlap: this cue ends 2 frames before the next
                ends[i] = max(limit, starts[i] + min(needed, longest))
            elif starts[i + 1] - ends[i] < rules.bridge_frames:
                if limit - starts[i] <= longest:
                    ends[i] = limit
                elif ends[i + 1] - (ends[i] + gap) <= longest:
                    starts[i + 1] = ends[i] + gap
    for cue, start, end in zip(cues, starts, ends):
        cue.start, cue.end = start / fps, end / fps
    return cues


# ---- writing -------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=8192)
def _pinyin(words: tuple[str, ...]) -> str:
    from app.language.pinyin import pinyin_of_words  # pinyin reads CC-CEDICT; only files that show it need it

    return pinyin_of_words(list(words))


def file_lines(cue: Cue, kinds: tuple[str, ...] | list[str], rules: CueRules | None = None) -> list[str]:
    """A cue as SRT, WebVTT and ASS show it: each hanzi line followed by its own pinyin line (in the
    order `kinds` gives hanzi and pinyin), the English line last. End-of-line commas and full stops
    are dropped from both unless `rules.keep_punctuation`."""
    rules = rules or CueRules()
    lines = []
    for words in cue.line_words:
        shown = _written(words, rules)
        for kind in kinds:
            if kind == "hanzi":
                lines.append(written_text(words, rules))
            elif kind == "pinyin":
                lines.append(_pinyin(tuple(w.text for w in shown)) if shown else "")
    if "english" in kinds:
        lines += cue.english.split("\n")  # glosses come in lines of at most 42 characters
    return [line for line in lines if line]


def to_ssa(cues: list[Cue], kinds: tuple[str, ...] | list[str], rules: CueRules | None = None) -> pysubs2.SSAFile:
    subs = pysubs2.SSAFile()
    style = subs.styles["Default"]
    style.fontname = "Noto Sans CJK SC"
    style.fontsize = 22
    for cue in cues:
        text = r"\N".join(file_lines(cue, kinds, rules))
        if text:
            subs.append(pysubs2.SSAEvent(start=round(cue.start * 1000), end=round(cue.end * 1000), text=text))
    return subs


# ---- ASS: pinyin over each hanzi, tone colours, karaoke ------------------------------------------
# One event per cue (so `check` reads our ASS as any other file): for each hanzi line, its pinyin line
# above it; the English line last. Each hanzi and its syllable sit in a cell as wide as the wider of
# the two (letter spacing, \fsp, from the font's own advances), so each syllable stands over its hanzi
# while the pinyin line still reads as words (wǒmen yìqǐ). The hanzi are timed word by word with \k:
# dim in their tone colour until spoken, then bright.

ASS_RES = (1280, 720)  # players and ffmpeg scale PlayRes to the video
ASS_SIZES = {"hanzi": 54, "pinyin": 26, "english": 30}
ASS_FONT = "Noto Sans CJK SC"
ASS_CELL_GAP = 0.35  # of the hanzi size, between word cells
_FONT_FILES = ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
               "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc")


@functools.lru_cache(maxsize=1)
def _font():
    """The CJK font at 100 px (PIL), or None: widths are then estimated (hanzi 1 em, Latin 0.55 em)."""
    try:
        from PIL import ImageFont

        path = next(p for p in _FONT_FILES if Path(p).is_file())
        return ImageFont.truetype(path, 100, index=2)  # index 2: the SC face of the collection
    except Exception:
        return None


def text_width(text: str, size: float) -> float:
    """Width in ASS pixels at font size `size`; libass sizes a font by ascent + descent, 1.45 em for
    Noto Sans CJK, so an em is size / 1.45."""
    font = _font()
    if font is None:
        return sum(1.0 if has_cjk(c) else 0.55 for c in text) * size / 1.45
    return font.getlength(text) * size / 145


def ass_colour(hex_colour: str, dim: bool = False) -> str:
    """'#e53935' → '&H3539E5&' (ASS is blue-green-red); `dim`: half-way to dark grey, for the unspoken."""
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    if dim:
        r, g, b = ((c + 0x50) // 2 for c in (r, g, b))
    return f"&H{b:02X}{g:02X}{r:02X}&"


def _colours(tone: int) -> str:
    from app.language.pinyin import TONE_COLOURS

    return f"\\1c{ass_colour(TONE_COLOURS[tone])}\\2c{ass_colour(TONE_COLOURS[tone], dim=True)}"


@dataclass
class _Cell:
    """One hanzi (or a run of punctuation) and its syllable, centred over each other in a cell."""

    hanzi: str
    pinyin: str
    colours: str  # ASS colour tags (tone colour; white for punctuation)
    spaced: bool = False  # a word space before the syllable (drawn in the gap, not centred)
    lag: int = 0  # centiseconds of silence before it is spoken (an empty karaoke syllable)
    length: int = 0  # centiseconds it is spoken (\\k)
    gap: float = 0.0  # space after it: a word's end


def _cells(words: list[Word], start: float, end: float, clock: float) -> tuple[list[_Cell], float]:
    """The line's cells, in order, timed for karaoke: a word's time is shared by its characters."""
    from app.language.pinyin import ascii_punctuation  # pinyin builds on this module too

    cells: list[_Cell] = []
    for n, token in enumerate(cue_tokens(Cue(start, end, words))):
        w = token.word
        lag = max(0, round((token.start - clock) * 100))
        clock += lag / 100
        if not w.syllables:  # punctuation: untimed, white
            cells.append(_Cell(w.hanzi, ascii_punctuation(w.hanzi), "\\1c&HFFFFFF&\\2c&HFFFFFF&", lag=lag))
        else:
            length = max(1, round((token.end - clock) * 100))
            clock += length / 100
            shares = [length // len(w.hanzi) + (1 if k < length % len(w.hanzi) else 0) for k in range(len(w.hanzi))]
            written, at = w.pinyin, 0
            for k, (char, syllable, tone) in enumerate(zip(w.hanzi, w.syllables, w.tones)):
                found = written.find(syllable, at)  # separators (' -) kept with the syllable after them
                found = at if found < 0 else found
                prefix = written[at:found]
                spaced = (k == 0 and n > 0 and not w.joins_previous) or prefix == " "
                if spaced and k > 0:  # dictionary words inside one jieba word (八点 bā diǎn): a word gap
                    cells[-1].gap = ASS_CELL_GAP * ASS_SIZES["hanzi"]
                cells.append(_Cell(char, prefix.strip() + syllable, _colours(tone), lag=lag if k == 0 else 0,
                                   length=shares[k], spaced=spaced))
                at = found + len(syllable)
        cells[-1].gap = ASS_CELL_GAP * ASS_SIZES["hanzi"]
    if cells:
        cells[-1].gap = 0.0  # the line is centred on its text, not on a trailing gap
    return cells, clock


def _ass_line(words: list[Word], start: float, end: float, clock: float) -> tuple[str, str, float]:
    """(pinyin line, hanzi line with \\k, karaoke clock after it) for one hanzi line of a cue. Each
    hanzi and its syllable are centred in a cell as wide as the wider of the two (plus the word gap
    after a word's last cell): the letter spacing (\\fsp) after a cell's last character is its right
    margin plus the next cell's left margin, and a hard space opens the line with the first left margin.
    Both lines come out exactly as wide, so centred, each syllable stands over its hanzi."""
    hz, py = ASS_SIZES["hanzi"], ASS_SIZES["pinyin"]
    cells, clock = _cells(words, start, end, clock)
    if not cells:
        return "", "", clock
    widths = [max(text_width(c.hanzi, hz), text_width(c.pinyin, py)) for c in cells]
    h_left = [(w - text_width(c.hanzi, hz)) / 2 for c, w in zip(cells, widths)]
    p_left = [(w - text_width(c.pinyin, py)) / 2 for c, w in zip(cells, widths)]
    space = text_width(" ", py)

    def after(left: list[float], i: int, text: str, size: float, spaced_next: bool) -> float:
        right = widths[i] - text_width(text, size) - left[i] + cells[i].gap
        return right + (left[i + 1] - (space if spaced_next else 0) if i + 1 < len(cells) else 0)

    hanzi = [f"{{\\fsp{h_left[0] - text_width(' ', hz):.2f}}}\\h"]
    pinyin = [f"{{\\fsp{p_left[0] - space:.2f}}}\\h"]
    for i, cell in enumerate(cells):
        spaced_next = i + 1 < len(cells) and cells[i + 1].spaced
        h_sp = after(h_left, i, cell.hanzi, hz, False)
        p_sp = after(p_left, i, cell.pinyin, py, spaced_next)
        karaoke = f"{{\\k{cell.lag}}}" if cell.lag else ""
        hanzi.append(f"{karaoke}{{\\k{cell.length}\\fsp0{cell.colours}}}{cell.hanzi[:-1]}"
                     f"{{\\fsp{h_sp:.2f}}}{cell.hanzi[-1]}")
        lead = " " if cell.spaced else ""
        pinyin.append(f"{{\\fsp0{cell.colours}}}{lead}{cell.pinyin[:-1]}{{\\fsp{p_sp:.2f}}}{cell.pinyin[-1]}")
    return "".join(pinyin), "".join(hanzi), clock


def to_karaoke_ass(cues: list[Cue], kinds: tuple[str, ...] | list[str], rules: CueRules | None = None,
                   resolution: tuple[int, int] = ASS_RES) -> pysubs2.SSAFile:
    rules = rules or CueRules()
    subs = pysubs2.SSAFile()
    subs.info.update({"PlayResX": str(resolution[0]), "PlayResY": str(resolution[1]), "WrapStyle": "2",
                      "ScaledBorderAndShadow": "yes"})
    style = subs.styles["Default"]
    style.fontname, style.fontsize, style.outline, style.shadow = ASS_FONT, ASS_SIZES["hanzi"], 2.5, 0
    style.marginv = round(resolution[1] * 0.04)
    for cue in cues:
        lines, clock = [], cue.start
        for words in cue.line_words:
            shown = _written(words, rules)
            if not shown:
                continue
            if not rules.keep_punctuation:
                shown = [Word(" ", w.start, w.end) if w.text in INLINE_AS_SPACE else w for w in shown]
            pinyin, hanzi, clock = _ass_line(shown, cue.start, cue.end, clock)
            if "pinyin" in kinds:
                lines.append(f"{{\\fs{ASS_SIZES['pinyin']}}}{pinyin}")
            if "hanzi" in kinds:
                lines.append(f"{{\\fs{ASS_SIZES['hanzi']}}}{hanzi}")
        if "english" in kinds and cue.english:
            # A zero-length syllable, white before and after: the English line is never "unspoken".
            lines += [f"{{\\k0\\fsp0\\fs{ASS_SIZES['english']}\\1c&HFFFFFF&\\2c&HFFFFFF&}}{line}"
                      for line in cue.english.split("\n") if line]
        if lines:
            subs.append(pysubs2.SSAEvent(start=round(cue.start * 1000), end=round(cue.end * 1000),
                                         text=r"\N".join(lines)))
    return subs


def to_text(cues: list[Cue], kinds: tuple[str, ...] | list[str]) -> str:
    """Plain transcript: the chosen lines of each cue, unbroken and with all punctuation, a blank
    line between cues."""
    return "\n\n".join("\n".join(cue.lines(kinds)) for cue in cues if cue.lines(kinds)) + "\n"


def write_subtitles(cues: list[Cue], path: str | Path, kinds=("hanzi", "pinyin", "english"), fmt: str | None = None,
                    rules: CueRules | None = None) -> Path:
    """`rules.keep_punctuation` keeps end-of-line commas and full stops in SRT, WebVTT and ASS."""
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise ValueError(f"unknown subtitle format {fmt!r}; choose from {', '.join(FORMATS)}")
    kinds = [k for k in kinds if k in LINE_KINDS] or ["hanzi"]
    if fmt == "txt":
        path.write_text(to_text(cues, kinds), encoding="utf-8")
    elif fmt == "ass":
        to_karaoke_ass(cues, kinds, rules).save(str(path), format_="ass", encoding="utf-8")
    else:
        to_ssa(cues, kinds, rules).save(str(path), format_=fmt, encoding="utf-8")
    return path


# ---- checking any subtitle file ------------------------------------------------------------------
# Ours or anyone's, like Subtitle Edit's Netflix quality check. A line is a hanzi line when it holds a
# CJK character (pinyin and English lines do not): the line rules apply to hanzi lines only, the
# timing rules to every cue, in file order.

RULES = {
    "line-length": "a hanzi line holds at most 16 characters, punctuation included",
    "lines": "at most 2 hanzi lines per cue",
    "end-punctuation": "no comma or full stop at the end of a hanzi line",
    "orphan": "no cue of only one or two hanzi",
    "min-duration": "a cue lasts at least 5/6 s",
    "max-duration": "a cue lasts at most 7 s",
    "reading-speed": "at most 9 characters a second",
    "frame-gap": "at least 2 frames between cues",
    "close-gap": "a gap under half a second is closed to 2 frames",
}


@dataclass
class Violation:
    cue: int  # 1-based position in the file
    start_ms: int
    rule: str  # a key of RULES
    detail: str


def clock(ms: int) -> str:
    """SRT-style time: 00:01:02,340."""
    sign, ms = ("-" if ms < 0 else ""), abs(ms)
    return f"{sign}{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def load_events(path: str | Path) -> list[pysubs2.SSAEvent]:
    """The cues of any subtitle file pysubs2 reads (UTF-8, else GB18030, common for Chinese files).
    Raises UserError with one line for a missing, unreadable or empty file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    subs = None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            subs = pysubs2.load(str(path), encoding=encoding)
            break
        except UnicodeDecodeError:
            continue
        except Exception as exc:  # pysubs2's parsers raise many kinds of error on a malformed file
            raise UserError(f"{path}: not a subtitle file pysubs2 can read ({type(exc).__name__}: {exc})") from exc
    if subs is None:
        raise UserError(f"{path}: neither UTF-8 nor GB18030 text")
    events = [e for e in subs if not e.is_comment]
    if not events:
        raise UserError(f"{path}: no subtitle cues in it")
    return events


def check_events(events: list[pysubs2.SSAEvent], rules: CueRules | None = None) -> list[Violation]:
    rules = rules or CueRules()
    found: list[Violation] = []
    frame_ms = 1000 / rules.fps
    for n, event in enumerate(events, 1):
        def add(rule: str, detail: str) -> None:
            found.append(Violation(n, event.start, rule, detail))

        hanzi = [line.strip() for line in event.plaintext.split("\n") if has_cjk(line)]
        for k, line in enumerate(hanzi, 1):
            if len(line) > rules.max_chars:
                add("line-length", f"hanzi line {k} has {len(line)} characters (at most {rules.max_chars}): {line}")
            if not rules.keep_punctuation and line[-1] in LINE_END_DROPPED:
                add("end-punctuation", f"hanzi line {k} ends with {line[-1]}: {line}")
        if len(hanzi) > rules.max_lines:
            add("lines", f"{len(hanzi)} hanzi lines (at most {rules.max_lines}): {' / '.join(hanzi)}")
        count = hanzi_count("".join(hanzi))
        if 0 < count <= ORPHAN_HANZI:
            add("orphan", f"only {count} hanzi: {' / '.join(hanzi)}")
        duration = event.end - event.start
        if duration < rules.min_duration * 1000 - 1e-6:
            add("min-duration", f"{duration} ms (at least {rules.min_duration * 1000:.0f} ms)")
        if duration > rules.max_duration * 1000 + 1e-6:
            add("max-duration", f"{duration / 1000:.2f} s (at most {rules.max_duration:g} s)")
        chars = sum(len(line.replace(" ", "")) for line in hanzi)
        if chars and duration > 0 and chars / (duration / 1000) > rules.max_cps + 1e-9:
            add("reading-speed", f"{chars / (duration / 1000):.1f} characters a second (at most {rules.max_cps:g}): "
                                 f"{chars} in {duration / 1000:.2f} s")
        if n < len(events):
            gap = events[n].start - event.end
            two_frames = rules.min_gap_frames * frame_ms
            if gap < two_frames - 1e-6:
                add("frame-gap", f"{gap} ms to the next cue (at least {rules.min_gap_frames} frames = "
                                 f"{two_frames:.0f} ms at {rules.fps:g} fps)")
            elif rules.min_gap_frames < math.floor(gap / frame_ms + 0.5) < rules.bridge_frames:
                add("close-gap", f"{gap} ms to the next cue: under half a second, close it to "
                                 f"{rules.min_gap_frames} frames ({two_frames:.0f} ms at {rules.fps:g} fps)")
    return found


def check_file(path: str | Path, rules: CueRules | None = None) -> tuple[int, list[Violation]]:
    """(number of cues, every rule the file breaks). Raises UserError for a file it cannot read."""
    events = load_events(path)
    return len(events), check_events(events, rules)


# --- A cue's words as the pinyin line reads them (the study player, karaoke ASS, Anki) --------------


@dataclass(frozen=True)
class Token:
    """One word of a cue as the pinyin line reads it, with the time it is spoken."""

    word: WordPinyin
    start: float
    end: float

    @property
    def is_word(self) -> bool:
        return bool(self.word.syllables)


def cue_tokens(cue: Cue) -> list[Token]:
    """The cue's words read in context (one reading: app.language.pinyin.read_words over the cue's own jieba
    words), each timed by the recogniser's words its characters fall in."""
    from app.language.pinyin import read_words  # pinyin reads CC-CEDICT; only files that show it need it

    words = read_words([w.text for w in cue.words])
    spans = []  # (first char, last char + 1, start, end) of each recognised word
    at = 0
    for w in cue.words:
        spans.append((at, at + len(w.text), w.start, w.end))
        at += len(w.text)

    def time_at(index: int) -> tuple[float, float]:
        for a, b, start, end in spans:
            if a <= index < b:
                return start, end
        return cue.end, cue.end

    out, at = [], 0
    for word in words:
        start = time_at(at)[0]
        end = time_at(at + max(len(word.hanzi), 1) - 1)[1]
        out.append(Token(word, max(start, cue.start), min(max(end, start), cue.end)))
        at += len(word.hanzi)
    return out
