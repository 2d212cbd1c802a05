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
