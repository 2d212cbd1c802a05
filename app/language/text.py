"""Chinese text normalisation: the single owner of Simplified conversion, width unification,
punctuation handling and the normalised CER that every part of the project reports.

Everything else (the transcription pipeline, the feature pipeline's labels, training metrics,
evaluation) imports from here, so "CER" means the same thing everywhere:
Simplified (OpenCC t2s), width unified (NFKC), punctuation and spaces removed, Latin lower-cased.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence

# Whisper often writes ASCII punctuation between hanzi; subtitles for learners use the
# full-width Chinese forms. Only applied next to a CJK character, so "3.5" or "Mr. Li" survive.
_ASCII_TO_CJK_PUNCT = {",": "，", "?": "？", "!": "！", ":": "：", ";": "；"}
_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_RE = re.compile(f"[{_CJK}]")
_ASCII_PUNCT_AFTER_CJK = re.compile(f"(?<=[{_CJK}])\\s*([,?!:;])\\s*")
_PERIOD_AFTER_CJK = re.compile(f"(?<=[{_CJK}])\\.(?!\\d)")
_SPACE_BETWEEN_CJK = re.compile(f"(?<=[{_CJK}])\\s+(?=[{_CJK}])")


@functools.lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional → Simplified with OpenCC's t2s table (phrase-aware, e.g. 乾燥→干燥, 乾隆 stays)."""
    return _t2s().convert(text) if text else text


def traditional_only_chars(text: str) -> list[str]:
    """Characters that t2s changes in context: what a Simplified-only output must not contain.

    Context matters: 乾 alone is Traditional for 干, but 乾隆 is written 乾 in Simplified too.
    """
    converted = to_simplified(text)
    if len(converted) == len(text):
        return [a for a, b in zip(text, converted) if a != b and _CJK_RE.match(a)]
    return [ch for ch in text if _CJK_RE.match(ch) and to_simplified(ch) != ch]


def unify_width(text: str) -> str:
    """Full-width Latin letters, digits and spaces → half-width (ＡＢＣ１２３ → ABC123).

    NFKC on those code points only: applying NFKC to everything would also turn Chinese
    punctuation such as '，' into ',' which labels and subtitles keep.
    """
    out = []
    for ch in text:
        code = ord(ch)
        if 0xFF10 <= code <= 0xFF19 or 0xFF21 <= code <= 0xFF3A or 0xFF41 <= code <= 0xFF5A or code == 0x3000:
            out.append(unicodedata.normalize("NFKC", ch))
        else:
            out.append(ch)
    return "".join(out)


def clean_transcript(text: str) -> str:
    """What the app shows: Simplified, width unified, Chinese punctuation, no stray spaces."""
    text = unify_width(to_simplified(text)).strip()
    text = _ASCII_PUNCT_AFTER_CJK.sub(lambda m: _ASCII_TO_CJK_PUNCT[m.group(1)], text)
    text = _PERIOD_AFTER_CJK.sub("。", text)
    return _SPACE_BETWEEN_CJK.sub("", text)


def clean_transcript_aligned(text: str) -> str:
    """`clean_transcript` that keeps the length, character for character, so per-character
    timestamps still line up: t2s (per character when a phrase rule would change the length),
    width unified, ASCII punctuation after hanzi made Chinese. Spaces are left for the caller."""
    simplified = to_simplified(text)
    if len(simplified) != len(text):
        simplified = "".join(to_simplified(c) if len(to_simplified(c)) == 1 else c for c in text)
    out = list(unify_width(simplified))
    for i in range(1, len(out)):
        if _CJK_RE.match(out[i - 1]):
            if out[i] in _ASCII_TO_CJK_PUNCT:
                out[i] = _ASCII_TO_CJK_PUNCT[out[i]]
            elif out[i] == "." and not (i + 1 < len(out) and out[i + 1].isdigit()):
                out[i] = "。"
    return "".join(out)


def normalize_label(text: str) -> str:
    """Training label form: Simplified, width unified, punctuation kept."""
    return clean_transcript(text)


def is_punctuation(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "PSZC"


def normalize_for_cer(text: str) -> str:
    """Scoring form: Simplified, width unified, lower-case, punctuation/symbols/spaces removed."""
    text = unify_width(to_simplified(text)).lower()
    return "".join(ch for ch in text if not is_punctuation(ch))


def cer(references: list[str], hypotheses: list[str]) -> float:
    """Corpus-level character error rate after `normalize_for_cer` (jiwer's edit distance).

    Empty normalised references are skipped (they carry no characters to score against).
    """
    import jiwer

    pairs = [(normalize_for_cer(r), normalize_for_cer(h)) for r, h in zip(references, hypotheses, strict=True)]
    pairs = [(r, h) for r, h in pairs if r]
    if not pairs:
        raise ValueError("no non-empty reference to score")
    return jiwer.cer([r for r, _ in pairs], [h for _, h in pairs])


def char_errors(reference: str, hypothesis: str) -> int:
    """Substitutions + deletions + insertions between the normalised strings."""
    import jiwer

    ref, hyp = normalize_for_cer(reference), normalize_for_cer(hypothesis)
    if not ref:
        return len(hyp)
    out = jiwer.process_characters(ref, hyp)
    return out.substitutions + out.deletions + out.insertions


# Numbers (cn2an writes 2个 as 二个 and 20年 as 二零年). A digit 2 said as a count takes 两 before these
# measure words, and a number that starts with 2000, 20000, ... takes it before 千/万/亿 (2个 → 两个, 2000元 →
# 两千元, 2万 → 两万); 12个, 第2个, 200, 2楼, 2月 and the year 2002年 keep 二. Only digits change: hanzi stay as written.
_MEASURES = ("个|位|次|天|晚|夜|年(?!级|代)|岁|块|元|本|张|件|只|条|种|家|间|台|辆|双|份|杯|瓶|碗|斤|公斤|公里|"
             "米|小时|分钟|周|星期|倍|遍|套|部|首|层|场|段|篇|页|根|支|把|盒|包|顿|口|句|趟|千|万|亿|"
             "点(?![零一二三四五六七八九十\\d])")
_COUNT_TWO = re.compile(f"(?<![\\d.第])2(?=(?:{_MEASURES}))")
_BIG_NUMBER = re.compile(r"(?<![\d.])[1-9]\d{3,}(?![\d.%年])")
_BEFORE_NIAN = re.compile(r"(?<![\d.])([1-9]\d{0,2})(?=(年代|年(?!级)))")


def digits_to_hanzi(text: str) -> str:
    """Digit numbers written as spoken hanzi (cn2an, and 两 where Mandarin says it): '住了2晚，239元' →
    '住了两晚，二百三十九元', '6.3%' → '百分之六点三', '1998年' → '一九九八年', '2000元' → '两千元'.

    Before 年, a number of one to three digits is a count (用了20年 → 用了二十年, 80年代 → 八十年代)
    unless it is a two-digit year of the 80s or 90s or has a leading zero (98年 → 九八年, 09年 → 零九年)."""
    import cn2an

    def before_nian(match: re.Match) -> str:
        digits = match.group(1)
        if match.group(2) == "年" and len(digits) == 2 and int(digits) >= 80:
            return digits  # a year: cn2an reads it digit by digit
        ordinal = match.string[match.start() - 1:match.start()] == "第"
        return "两" if digits == "2" and not ordinal else cn2an.an2cn(digits)

    def big(match: re.Match) -> str:
        spoken = cn2an.an2cn(match.group())
        return "两" + spoken[1:] if spoken[:2] in ("二千", "二万", "二亿") else spoken

    text = _BEFORE_NIAN.sub(before_nian, text)
    text = _BIG_NUMBER.sub(big, text)
    text = _COUNT_TWO.sub("两", text)
    return cn2an.transform(text, "an2cn")


def has_cjk(text: str) -> bool:
    return bool(_CJK_RE.search(text))


@functools.lru_cache(maxsize=1)
def _jieba():
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def split_words(text: str) -> list[str]:
    """jieba word segmentation (precise mode); the unit for pinyin, glosses and line breaks."""
    return [w for w in _jieba().lcut(text) if w]


def spread_span(chars: Sequence[str], start: float, end: float) -> list[tuple[str, float, float]]:
    """Share the span [start, end] evenly among `chars`, in order: (char, start, end) each. The
    recogniser times words, not characters ('這個' 0.00-0.36 s gives 這 0.00-0.18, 個 0.18-0.36)."""
    step = (end - start) / max(1, len(chars))
    return [(c, start + i * step, start + (i + 1) * step) for i, c in enumerate(chars)]
