"""Pinyin as a learner's dictionary writes it: the one convention behind the subtitles' pinyin line,
the UI's ruby pinyin and tone colours, and the syllables Practice compares.

The convention (README, "Pinyin convention", gives it with examples and its measured accuracy):

* Readings: a word CC-CEDICT knows takes the dictionary's reading: its tone 5 is the neutral tone,
  written unmarked (māma, xièxie, dōngxi), its capitals mark proper nouns (Běijīng), its "r5" is
  an erhua r (wánr); when it has several, its main entry (`_dictionary_reading`). A character
  standing alone takes pypinyin's reading of its jieba word, with rules for the particles (了 le,
  的 de, 吗 ma, ...) and for the polyphones pypinyin gets wrong (得 de/dé/děi, 地 de/dì, 长, 还,
  只, 过); words no dictionary knows are pypinyin's too.
* 一 and 不 are written with the tone they are spoken with, as learner textbooks do (yíyàng, yìqǐ,
  búduì); 一 keeps yī in ordinals, numbers, dates and at the end of a word (dìyī, yīyuè, tǒngyī).
  Third-tone sandhi is not written (nǐhǎo).
* Words (GB/T 16159-2012): jieba's words, syllables joined, with an apostrophe before a, o, e
  inside a word (nǚ'ér). A jieba word CC-CEDICT does not know is written as the dictionary words
  it is made of (很 漂亮); suffixes (们, 子, erhua r) and the aspect particles 着, 过 join the word
  before them; a number is one word.
"""

from __future__ import annotations

import functools
import html
import itertools
import re
import unicodedata
from dataclasses import dataclass

from app.language import cedict
from app.language.text import has_cjk, split_words

# A colour per tone, the convention most learner dictionaries use (Pleco-like); neutral is grey.
TONE_COLOURS = {1: "#e53935", 2: "#f29900", 3: "#43a047", 4: "#1e88e5", 5: "#8a8a8a"}

NUMERALS = "零〇一二三四五六七八九十百千万亿两"
# Before one of these digits 一 is itself a digit (一九九八, 一二三) and keeps yī.
_DIGITS = "零〇一二三四五六七八九十"
# Before a measure word: 一只猫 yì zhī, 两只 liǎng zhī (but 只有 zhǐyǒu).
_COUNTERS = "一二三四五六七八九十两几这那每哪半"
_LAND_COUNTERS = "块片亩这那"  # 这块地 zhè kuài dì: the noun 'ground', not adverbial de (jieba tags 块 zg)
# Grammatical particles, neutral wherever they stand alone or end a longer token.
_PARTICLES = {"了": "le5", "的": "de5", "吗": "ma5", "呢": "ne5", "吧": "ba5", "着": "zhe5", "们": "men5",
              "啊": "a5", "呀": "ya5", "嘛": "ma5", "啦": "la5", "么": "me5"}
# GB/T 16159 writes suffixes and the aspect particles with their word: péngyoumen, kànzhe, qùguo, wánr.
# (A sentence-final 了 is written apart, so a jieba token 了 stays a word of its own.)
_JOINS_WORD = {"men5", "zi5", "zhe5", "guo5", "r5"}
_JOINS_INSIDE_TOKEN = _JOINS_WORD | {"le5"}
# Words whose everyday sense is not the dictionary's main entry (the entry with most senses):
# 人家 'other people' rénjia (not 'household'), 女人 'woman' nǚrén (not 'wife'), 老公 'husband' lǎogōng;
# and jieba's token 过得, which is 过 + the particle 得 (过得很好 guòde), not CC-CEDICT's guòdé of 过得去.
_LEXICAL = {"人家": ("ren2", "jia5"), "女人": ("nv3", "ren2"), "老公": ("lao3", "gong1"), "过得": ("guo4", "de5")}
# Characters standing alone whose everyday reading is not pypinyin's first one: 谁 shéi (Xiandai Hanyu
# Cidian's first reading; shuí is its 又读), 脏 zāng 'dirty' (zàng is 'internal organ', 心脏).
_CHARACTERS = {"谁": "shei2", "脏": "zang1"}
# CC-CEDICT capitalises months and weekdays; Hanyu Pinyin orthography writes them lower-case (yīyuè).
_MONTH_OR_DAY = re.compile(r"(January|February|March|April|May|June|July|August|September|October|"
                           r"November|December|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)\b")
_NUMBERED = re.compile(r"[a-zv]+[1-5]")


@dataclass(frozen=True)
class WordPinyin:
    """One token of the line (a jieba word) with one syllable per hanzi (empty for punctuation / Latin)."""

    hanzi: str
    syllables: tuple[str, ...]  # as written: ("yí", "yàng"); an erhua 儿 is "r"
    tones: tuple[int, ...]  # tone written, 1-4, 5 for neutral (what the colours show)
    citation: tuple[int, ...] = ()  # dictionary tone: 一 yī and 不 bù before they change
    seps: tuple[str, ...] = ()  # before each syllable inside the token: "" joined, " " or "-"
    joins_previous: bool = False  # starts with 们, 着, 过 or an erhua r: written onto the word before

    @property
    def pinyin(self) -> str:
        return _spell(self.syllables, self.seps) if self.syllables else self.hanzi


def _starts_with_aoe(syllable: str) -> bool:
    return unicodedata.normalize("NFD", syllable[:1]).lower()[:1] in ("a", "o", "e")


def _spell(syllables: tuple[str, ...], seps: tuple[str, ...]) -> str:
    out = ""
    for i, syllable in enumerate(syllables):
        sep = seps[i] if i and i < len(seps) else ""
        # The apostrophe keeps syllable boundaries readable: Xī'ān is two syllables, xiān one.
        if i and not sep and _starts_with_aoe(syllable):
            sep = "'"
        out += sep + syllable
    return out


# ---- readings ------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _tags() -> dict[str, str]:
    """jieba's part-of-speech tag of every word in its dictionary (v verb, a adjective, r pronoun...)."""
    import jieba.posseg

    return jieba.posseg.dt.word_tag_tab


def _tag(word: str | None) -> str:
    return _tags().get(word, "") if word else ""


def _split(numbered: str) -> tuple[str, int]:
    return numbered[:-1], int(numbered[-1])


def _base_tone(hanzi: str, letters: str, tone: int) -> int:
    """一 and 不 as the dictionary has them (yī, bù): pypinyin and CC-CEDICT sometimes write the
    changed tone already (一起 yi4, 不是 bu2), and the change is applied once, by `_change_yi_bu`."""
    if hanzi == "一" and letters == "yi" and tone in (1, 2, 4):
        return 1
    if hanzi == "不" and letters == "bu" and tone in (2, 4):
        return 4
    return tone


@functools.lru_cache(maxsize=65536)
def _pypinyin(text: str) -> tuple[str | None, ...]:
    """pypinyin's reading of every hanzi of `text` ('yi1', 'nv3', neutral 5), None where it has none."""
    from pypinyin import Style, lazy_pinyin

    got = lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True)
    if len(got) != len(text):  # characters it cannot read come back merged: read one by one
        got = [lazy_pinyin(c, style=Style.TONE3, neutral_tone_with_five=True)[0] for c in text]
    return tuple(s if _NUMBERED.fullmatch(s) else None for s in got)


@functools.lru_cache(maxsize=4096)
def _citation_tone(hanzi: str) -> int:
    """A character's usual tone (for what follows 一/不 when it is written neutral: 一个 gè)."""
    reading = _pypinyin(hanzi)[0]
    return _split(reading)[1] if reading else 5


def _agrees(dictionary: tuple[str, ...], guess: tuple[str | None, ...]) -> bool:
    """Same syllables, same tones except where either says neutral (pypinyin seldom writes it)."""
    for d, g in zip(dictionary, guess):
        if g is None:
            continue
        (dl, dt), (gl, gt) = _split(d.lower()), _split(g)
        if dl != gl and not (dl == "r" and gl == "er") or (dt != gt and 5 not in (dt, gt)):
            return False
    return True


@functools.lru_cache(maxsize=65536)
def _dictionary_reading(word: str) -> tuple[str, ...]:
    """CC-CEDICT's reading of `word`, e.g. ('dong1', 'xi5'), capitals kept for proper nouns.

    Several readings: a common word before a name (大学 dàxué, not the classic Dàxué); an erhua
    reading of a final 儿 (花儿 huār, not the folk song huā'ér); a toned first syllable (起来 qǐlai,
    not the complement qilai); the dictionary's main entry, the one with most senses (东西 dōngxi
    'thing', not dōngxī 'east and west'; 大夫 dàifu 'doctor', not dàfū 'official'); then the one
    agreeing with pypinyin's phrase reading (好吃 hǎochī); then more neutral tones (多少 duōshao).
    """
    if word in _LEXICAL:
        return _LEXICAL[word]
    guess = tuple(None if g is None else f"{_split(g)[0]}{_base_tone(c, *_split(g))}"
                  for c, g in zip(word, _pypinyin(word)))
    options = []
    for order, (syllables, entry) in enumerate(cedict.readings(word)):
        if entry["definitions"] and _MONTH_OR_DAY.match(entry["definitions"][0]):
            syllables = tuple(s.lower() for s in syllables)
        syllables = tuple(f"{_split(s)[0]}{_base_tone(c, _split(s)[0].lower(), _split(s)[1])}"
                          for c, s in zip(word, syllables))
        tones = [_split(s)[1] for s in syllables]
        key = (any(s[0].isupper() for s in syllables), syllables[-1] != "r5", tones[0] == 5,
               -len(entry["definitions"]), not _agrees(syllables, guess), -tones.count(5), order)
        options.append((key, syllables))
    return min(options)[1]


@functools.lru_cache(maxsize=65536)
def _word_breaks(word: str) -> tuple[str, ...]:
    """Separators inside a dictionary word: a space before each capitalised part (Běijīng Dàxué,
    Cháng Jiāng), a hyphen between the halves of a four-character idiom (yìmú-yíyàng), and a space
    between the words of a longer entry that is a phrase (生日快乐 shēngrì kuàilè)."""
    reading = _dictionary_reading(word)
    seps = [" " if i and s[0].isupper() else "" for i, s in enumerate(reading)]
    if len(word) == 4 and cedict.is_idiom(word):
        seps[2] = seps[2] or "-"
    elif len(word) >= 4:
        for boundary in _phrase_parts(word)[:-1]:
            seps[boundary] = " "
    return tuple(seps)


def _phrase_parts(word: str) -> list[int]:
    """End offsets of the fewest dictionary words of 2+ characters that make up `word` ([len] if none)."""
    best: dict[int, list[int]] = {0: []}
    for start in range(len(word)):
        if start not in best:
            continue
        for end in range(start + 2, len(word) + 1):
            if (end - start < len(word)) and cedict.is_word(word[start:end]):
                if end not in best or len(best[start]) + 1 < len(best[end]):
                    best[end] = best[start] + [end]
    return best.get(len(word), [len(word)])


def _is_verb(hanzi: str) -> bool:
    """By jieba's tag or by the dictionary's first sense ("to ask"): jieba tags some verbs as nouns (问 n)."""
    senses = [d for _, entry in cedict.readings(hanzi) for d in entry["definitions"][:1]]
    return _tag(hanzi).startswith("v") or any(d.startswith("to ") for d in senses)


def _verb_doubling(token: str) -> bool:
    """走走, 问问: a doubled one-syllable verb, the second syllable light (zǒuzou, wènwen)."""
    return len(token) == 2 and token[0] == token[1] and not cedict.is_word(token) and _is_verb(token[0])


def _reduplicated(word: str) -> bool:
    """AA or AABB: 静静, 高高兴兴 (an adjective or adverb doubled, as before adverbial 地)."""
    return (len(word) == 2 and word[0] == word[1]) or (len(word) == 4 and word[0] == word[1] and word[2] == word[3])


@functools.lru_cache(maxsize=65536)
def _pieces(token: str) -> tuple[str, ...]:
    """The token itself if CC-CEDICT knows it, else the longest dictionary words it starts with, in turn
    (jieba's 很漂亮 → 很 + 漂亮, 一万块 → 一 + 万 + 块, 去过 → 去 + 过); jieba's 静静地 → 静静 + 地."""
    if len(token) == 1 or cedict.is_word(token) or _verb_doubling(token):
        return (token,)
    if token[-1] == "地" and _reduplicated(token[:-1]):
        return token[:-1], "地"
    out, i = [], 0
    while i < len(token):
        size = next(n for n in range(min(len(token) - i, 8), 0, -1)
                    if n == 1 or cedict.is_word(token[i:i + n]))
        out.append(token[i:i + size])
        i += size
    return tuple(out)


def _de(before: str | None, after: str | None) -> str:
    """得: dé 'to get' before 了 or a number (他得了金牌); děi 'must' between a subject or adverb
    and a verb (你得去, 我们还得走); otherwise the structural particle de (跑得快, 说得很好)."""
    if after and (after[0] == "了" or after[0] in NUMERALS):
        return "de2"
    # A one-character "noun" before 得 is mostly a verb or adjective jieba tags n (气得说不出话 de).
    subject = before is None or _tag(before)[:1] in ("r", "d") or (_tag(before)[:1] == "n" and len(before) > 1)
    if after and _tag(after)[:1] in ("v", "d") and subject:
        return "dei3"
    return "de5"


def _character(hanzi: str, before: str | None, after: str | None, inside: bool, alone: bool,
               context: str | None) -> str:
    """Reading of a one-character piece. `inside`: not the first piece of its jieba token;
    `alone`: the whole token; `before`/`after`: the neighbouring pieces on the line."""
    if hanzi == "儿" and before is not None:
        return "r5"  # erhua: 玩儿 wánr, and a 儿 jieba cut off its word (胡同/儿里 hútòngr lǐ)
    if hanzi == "子" and inside:
        return "zi5"
    if hanzi in _PARTICLES and (inside or alone):
        return _PARTICLES[hanzi]
    if hanzi == "得":
        return _de(before, after)
    if hanzi == "地" and before and before[-1] not in _LAND_COUNTERS and (
            _tag(before)[:1] in ("a", "b", "d", "z") or _reduplicated(before)):
        return "de5"  # adverbial 地 after an adjective or adverb: 慢慢地走, 高兴地说, 高高兴兴地
    if hanzi == "长":
        return "zhang3" if after and after[0] in "得着" else "chang2"  # 长得高 zhǎng, 很长 cháng
    if hanzi == "还" and after and after[0] in "钱书给债款":
        return "huan2"  # 还钱 huán qián 'pay back', otherwise pypinyin's hái
    if hanzi == "只" and before and before[-1] in _COUNTERS:
        return "zhi1"  # measure word: 一只猫
    if hanzi == "过" and (inside or alone) and _tag(before).startswith("v") and not (after and after[0] in "来去"):
        return "guo5"  # experiential 过 after a verb: 去过 qùguo
    return _CHARACTERS.get(hanzi) or context or ""


@dataclass
class _Syllable:
    hanzi: str
    letters: str  # 'yi', 'Bei', 'nv', 'r'; the hanzi itself when nothing can read it
    tone: int  # dictionary tone (一 1, 不 4)
    written: int
    sep: str  # before it inside its token
    token: int
    ends_word: bool  # last syllable of a dictionary word of 2+ characters (统一: 一 keeps yī)


def _read_run(tokens: list[str]) -> list[WordPinyin]:
    """Readings of consecutive hanzi tokens (a stretch of the line between punctuation)."""
    pieces = [(piece, t, k) for t, token in enumerate(tokens) for k, piece in enumerate(_pieces(token))]
    context = tuple(r for token in tokens for r in _pypinyin(token))
    syllables: list[_Syllable] = []
    offset = 0
    for i, (piece, t, k) in enumerate(pieces):
        before = pieces[i - 1][0] if i else None
        after = pieces[i + 1][0] if i + 1 < len(pieces) else None
        here = context[offset:offset + len(piece)]
        offset += len(piece)
        if len(piece) > 1 and cedict.is_word(piece):
            numbered, seps = _dictionary_reading(piece), list(_word_breaks(piece))
        elif _reduplicated(piece) and not _verb_doubling(piece):  # 静静(地): each syllable keeps its tone
            numbered, seps = here, [""] * len(piece)
        elif len(piece) > 1:  # a doubled verb
            numbered = (here[0], f"{_split(here[1])[0]}5") if all(here) else here
            seps = ["", ""]
        else:
            numbered = (_character(piece, before, after, k > 0, len(tokens[t]) == 1, here[0]),)
            seps = [""]
        # Between the pieces of one token: a space, except for suffixes and the digits of a number.
        joins = numbered[0] in _JOINS_INSIDE_TOKEN or (
            before is not None and all(c in NUMERALS for c in piece + before))
        seps[0] = "" if k == 0 or joins else " "
        for j, (hanzi, reading) in enumerate(zip(piece, numbered)):
            letters, tone = _split(reading) if reading else (hanzi, 5)
            tone = _base_tone(hanzi, letters, tone)
            syllables.append(_Syllable(hanzi, letters, tone, tone, seps[j], t,
                                       len(piece) > 1 and j == len(piece) - 1))
    _change_yi_bu(syllables)
    return [_word(token, [s for s in syllables if s.token == t]) for t, token in enumerate(tokens)]


def _change_yi_bu(syllables: list[_Syllable]) -> None:
    """一 and 不 written with the tone spoken: before a 4th tone 2nd (yíyàng, búduì); 一 before the
    other tones 4th (yìqǐ); a light yi/bu between a doubled verb, written as a word of its own
    (kàn yi kàn, shì bu shì); 一 stays yī at the end, in ordinals, numbers and dates."""
    for k, s in enumerate(syllables):
        if s.hanzi not in "一不" or k + 1 == len(syllables):
            continue
        before = syllables[k - 1].hanzi if k else ""
        after = syllables[k + 1]
        if before == after.hanzi and (s.hanzi == "不" or _is_verb(before)):  # not 一个一个 yí gè
            s.written, s.sep, after.sep = 5, " ", " "
            continue
        if s.tone == 5:  # the dictionary's own light yi/bu: 对不起 duìbuqǐ
            continue
        following = after.tone if after.tone != 5 else _citation_tone(after.hanzi)
        if s.hanzi == "不":
            s.written = 2 if following == 4 else 4
        elif not (before == "第" or after.hanzi in _DIGITS or after.hanzi in "月号" or s.ends_word
                  or (before and before in NUMERALS and after.hanzi not in "百千万亿")  # 十一, but 一万一千 yìqiān
                  or (before == "月" and after.hanzi == "日")):  # 一月一日
            s.written = 2 if following == 4 else 4


def _word(token: str, syllables: list[_Syllable]) -> WordPinyin:
    from pypinyin.contrib.tone_convert import to_tone

    marked = tuple(s.letters if s.letters in ("r", s.hanzi) else to_tone(f"{s.letters}{s.written}")
                   for s in syllables)
    first = f"{syllables[0].letters}{syllables[0].written}" if syllables else ""
    return WordPinyin(token, marked, tuple(s.written for s in syllables), tuple(s.tone for s in syllables),
                      tuple(s.sep for s in syllables), joins_previous=first.lower() in _JOINS_WORD)


def _runs(word: str) -> list[str]:
    """A token holding hanzi and other characters ("3个") split into its hanzi and other parts."""
    return ["".join(g) for _, g in itertools.groupby(word, key=has_cjk)]


def read_words(words: list[str]) -> list[WordPinyin]:
    """Every token of a line with its pinyin: the single reading behind line, ruby and Practice."""
    tokens = [part for w in words for part in _runs(w) if part]
    out: list[WordPinyin] = []
    for is_hanzi, group in itertools.groupby(tokens, key=lambda t: has_cjk(t[0])):
        group = list(group)
        out += _read_run(group) if is_hanzi else [WordPinyin(t, (), ()) for t in group]
    return out


def word_pinyin(word: str) -> WordPinyin:
    """One word on its own (its hanzi parts, if it mixes hanzi with other characters)."""
    read = [w for w in read_words([word]) if w.syllables]
    if len(read) == 1:
        return read[0]
    return WordPinyin(word, tuple(s for w in read for s in w.syllables), tuple(t for w in read for t in w.tones),
                      tuple(t for w in read for t in w.citation), tuple(" " for w in read for _ in w.syllables))


def words_with_pinyin(text: str) -> list[WordPinyin]:
    return read_words(split_words(text))


# ---- the line ------------------------------------------------------------------------------------

def pinyin_line(text: str) -> str:
    """'我们一起去北京吧。' → 'wǒmen yìqǐ qù Běijīng ba.' (what the subtitles and `python -m app pinyin` show)."""
    return pinyin_of_words(split_words(text))


def pinyin_of_words(words: list[str]) -> str:
    """Pinyin line of already segmented words (the cue's own words, so pinyin matches the hanzi)."""
    parts: list[str] = []
    after_hanzi = False
    opening = ""  # an opening quote or bracket waits for the word it opens: tā shuō: "nǐhǎo!"
    for w in read_words(words):
        if w.syllables:
            if w.joins_previous and parts and after_hanzi and not opening:
                parts[-1] += ("'" if _starts_with_aoe(w.pinyin) else "") + w.pinyin
            else:
                parts.append(opening + w.pinyin)
            opening, after_hanzi = "", True
        elif w.hanzi.strip():
            # Punctuation sticks to the previous word, Latin words stand alone.
            mark = ascii_punctuation(w.hanzi)
            if all(c in _OPENING for c in w.hanzi.strip()):
                opening += mark.strip()
            elif parts and all(not c.isalnum() for c in w.hanzi):
                parts[-1] += opening + mark
                opening = ""
            else:
                parts.append(opening + mark)
                opening = ""
            after_hanzi = False
        else:
            after_hanzi = False
    return " ".join(parts + ([opening] if opening else []))


_PUNCT_MAP = str.maketrans({"，": ",", "。": ".", "？": "?", "！": "!", "：": ":", "；": ";", "、": ",",
                            "“": '"', "”": '"', "（": "(", "）": ")", "《": '"', "》": '"', "「": '"',
                            "」": '"', "【": "[", "】": "]", "…": "..."})


_OPENING = "“‘（《「『【(["


def ascii_punctuation(text: str) -> str:
    return text.translate(_PUNCT_MAP)


def tone_numbers(text: str) -> list[int]:
    """Tone written on every hanzi in order (5 = neutral), as the line and the colours show it."""
    return [t for w in words_with_pinyin(text) for t in w.tones]


def tone_html(text: str) -> str:
    """Hanzi with ruby pinyin, each syllable coloured by its written tone (for the UI)."""
    out = []
    for w in words_with_pinyin(text):
        if not w.syllables:
            out.append(html.escape(w.hanzi))
            continue
        spans = "".join(
            f'<ruby class="tone{t}" style="color:{TONE_COLOURS[t]}">{html.escape(c)}<rt>{html.escape(s)}</rt></ruby>'
            for c, s, t in zip(w.hanzi, w.syllables, w.tones)
        )
        out.append(f'<span class="word">{spans}</span>')
    return "".join(out)


# ---- syllables for Practice ----------------------------------------------------------------------

@dataclass(frozen=True)
class Syllable:
    """One hanzi's reading split the way a learner's mistakes split: initial, final, tone.

    `tone` is the dictionary tone (一 yī and 不 bù unchanged, so a syllable is judged the same
    whatever follows it); `spoken_tone` is what a native speaker says: the tone written in the
    pinyin line (一 and 不 already changed, neutral tones) plus third-tone sandhi (3-3 → 2-3),
    which the line does not write. Pitch is compared with `spoken_tone`.
    """

    hanzi: str
    marked: str  # "hǎo", as the pinyin line writes it
    initial: str  # "h"; "" for zero-initial syllables (ài, yī: strict pinyin initials)
    final: str  # "ao"
    tone: int
    spoken_tone: int


def syllables(text: str) -> list[Syllable]:
    """Syllables of every hanzi in `text`, read exactly as the pinyin line reads them."""
    from pypinyin.contrib.tone_convert import to_finals, to_initials

    out: list[Syllable] = []
    clauses: list[int] = []  # sandhi runs inside a clause: a comma's pause stops it (你好，我们: hǎo stays 3)
    for w in words_with_pinyin(text):
        if not w.syllables and any(unicodedata.category(c).startswith("P") for c in w.hanzi):
            clauses.append(len(out))
        for hanzi, marked, written, tone in zip(w.hanzi, w.syllables, w.tones, w.citation):
            plain = marked.lower()
            if plain in ("r", hanzi):  # erhua r, or a character nothing could read
                initial, final = "", plain
            else:
                initial, final = to_initials(plain, strict=True), to_finals(plain, strict=True)
            out.append(Syllable(hanzi, marked, initial, final, tone, written))
    bounds = [0, *clauses, len(out)]
    return [s for a, b in zip(bounds, bounds[1:]) for s in _third_tone_sandhi(out[a:b])]


def _third_tone_sandhi(sylls: list[Syllable]) -> list[Syllable]:
    """3-3 → 2-3 over a clause (word boundaries do not stop it in fluent speech): in a run of third
    tones every one but the last rises."""
    from dataclasses import replace

    return [replace(s, spoken_tone=t) for s, t in zip(sylls, spoken_tones([s.spoken_tone for s in sylls]))]


def spoken_tones(tones: list[int] | tuple[int, ...]) -> list[int]:
    """Written tones of one clause → as spoken: in a run of third tones every one but the last rises."""
    spoken = list(tones)
    i = 0
    while i < len(spoken):
        j = i
        while spoken[i] == 3 and j + 1 < len(spoken) and spoken[j + 1] == 3:
            j += 1
        for k in range(i, j):
            spoken[k] = 2
        i = j + 1
    return spoken


@functools.lru_cache(maxsize=1)
def _toneless_syllables() -> frozenset[str]:
    """Every syllable pypinyin's dictionary reads, without its tone ('ü' as 'v'): what pinyin input may hold."""
    from pypinyin.constants import PINYIN_DICT
    from pypinyin.contrib.tone_convert import to_normal

    return frozenset(to_normal(r, v_to_u=False) for readings in PINYIN_DICT.values() for r in readings.split(","))


def _split_letters(letters: str) -> list[str] | None:
    """'nihao' → ['ni', 'hao']: the split into dictionary syllables with the fewest pieces (None if none)."""
    known = _toneless_syllables()
    best: list[list[str] | None] = [[]] + [None] * len(letters)
    for end in range(1, len(letters) + 1):
        for start in range(max(0, end - 6), end):
            if best[start] is not None and letters[start:end] in known:
                if best[end] is None or len(best[start]) + 1 < len(best[end]):
                    best[end] = best[start] + [letters[start:end]]
    return best[-1]


def syllables_of_pinyin(text: str) -> list[Syllable]:
    """Syllables written as pinyin ('mā', 'ma1', 'nǐ hǎo', 'ni3hao3', 'nǐhǎo'), third-tone sandhi applied as
    spoken; `hanzi` is empty. Raises ValueError on anything that is not pinyin."""
    import re

    from pypinyin.contrib.tone_convert import to_finals, to_initials, to_tone, to_tone3

    out: list[Syllable] = []
    for token in re.findall(r"[^\s,，'’]+", (text or "").lower().replace("ü", "v").replace("u:", "v")):
        pieces: list[tuple[str, int]] = []
        for part, digit in re.findall(r"([^1-5]+)([1-5]?)", token):
            letters = to_tone3(part, neutral_tone_with_five=False)  # marks → one digit at the end (if any)
            bare = re.sub(r"[1-5]", "", letters).replace("ü", "v")
            split = _split_letters(bare) if bare.isascii() and bare.isalpha() else None
            if not split:
                raise ValueError(f"{token!r} is not pinyin (e.g. mā, ma1, nǐ hǎo)")
            tones = _marked_tones(part, split) if not digit else [5] * (len(split) - 1) + [int(digit)]
            pieces += list(zip(split, tones))
        if not pieces:
            raise ValueError(f"{token!r} is not pinyin (e.g. mā, ma1, nǐ hǎo)")
        for letters, tone in pieces:
            marked = to_tone(f"{letters}{tone}").replace("v", "ü") if tone != 5 else letters.replace("v", "ü")
            out.append(Syllable("", marked, to_initials(marked, strict=True), to_finals(marked, strict=True), tone, tone))
    return _third_tone_sandhi(out)


def _marked_tones(part: str, split: list[str]) -> list[int]:
    """The tone mark inside each syllable of `part` ('nǐhao' split ['ni', 'hao'] → [3, 5])."""
    marks = {c: t + 1 for t, group in enumerate(("āēīōūǖ", "áéíóúǘ", "ǎěǐǒǔǚ", "àèìòùǜ")) for c in group}
    tones, position = [], 0
    for syllable in split:
        chunk = part[position:position + len(syllable)]
        tones.append(next((marks[c] for c in chunk if c in marks), 5))
        position += len(syllable)
    return tones
