"""Pinyin by the stated convention (README, "Pinyin convention"): the reference list, the rules one by
one, and the same syllables in the line, the UI's ruby and Practice."""

from __future__ import annotations

import subprocess
import sys

from app.language import cedict, gloss
from app.language.pinyin import (TONE_COLOURS, pinyin_line, pinyin_of_words, syllables, tone_html, tone_numbers,
                        word_pinyin, words_with_pinyin)
from app.language.text import split_words
from tests.conftest import ROOT
from tests.pinyin_accuracy import reference_rows, score


def test_reference_list_at_least_98_percent_exact():
    """tests/data/pinyin_reference.tsv: words and sentences (HSK sentences among them) whose pinyin
    was written by hand from the convention, never copied from this program's output."""
    rows = reference_rows()
    assert len(rows) >= 200
    exact, _, misses = score(pinyin_line, rows)
    assert exact >= 0.98, "\n".join(f"{t}: got {g!r}, expected {e!r}" for t, g, e in misses)


def test_multi_reading_characters_follow_the_phrase():
    assert word_pinyin("银行").pinyin == "yínháng"
    assert word_pinyin("重庆").pinyin == "Chóngqìng"
    assert word_pinyin("长大").pinyin == "zhǎngdà"
    assert word_pinyin("行走").pinyin == "xíngzǒu"
    assert word_pinyin("重要").pinyin == "zhòngyào"


def test_line_spaces_words_and_attaches_punctuation():
    assert pinyin_line("我在重庆的银行工作，孩子长大了。") == "wǒ zài Chóngqìng de yínháng gōngzuò, háizi zhǎngdà le."
    assert pinyin_line("我们一起去北京吧。") == "wǒmen yìqǐ qù Běijīng ba."
    assert pinyin_line("他说：“你好！”") == 'tā shuō: "nǐhǎo!"'
    assert pinyin_line("3个苹果") == "3 gè píngguǒ"


def test_neutral_tone_where_the_dictionary_has_it():
    assert [pinyin_line(w) for w in ("妈妈", "谢谢", "朋友", "衣服", "东西", "时候")] == [
        "māma", "xièxie", "péngyou", "yīfu", "dōngxi", "shíhou"]
    assert pinyin_line("东西南北") == "dōngxī nánběi"  # where it means 'east and west' it keeps its tone


def test_apostrophe_before_a_o_e_inside_a_word():
    assert [pinyin_line(w) for w in ("女儿", "西安", "天安门", "可爱")] == ["nǚ'ér", "Xī'ān", "Tiān'ānmén", "kě'ài"]


def test_yi_and_bu_written_changed_but_yi_kept_in_ordinals_dates_and_at_the_end():
    assert [pinyin_line(w) for w in ("一样", "一起", "一下", "不要", "不对")] == [
        "yíyàng", "yìqǐ", "yíxià", "búyào", "bú duì"]
    assert [pinyin_line(w) for w in ("第一", "一月", "统一", "十一", "一九九八年")] == [
        "dìyī", "yīyuè", "tǒngyī", "shíyī", "yījiǔjiǔbā nián"]
    assert pinyin_line("看一看") == "kàn yi kàn"
    assert pinyin_line("你来不来？") == "nǐ lái bu lái?"


def test_third_tone_sandhi_not_written_and_erhua_attached():
    assert pinyin_line("你好") == "nǐhǎo"
    assert [pinyin_line(w) for w in ("玩儿", "哪儿", "一点儿")] == ["wánr", "nǎr", "yìdiǎnr"]


def test_polyphones_and_particles_by_context():
    assert pinyin_line("我明天还钱。") == "wǒ míngtiān huán qián."
    assert pinyin_line("你得去。") == "nǐ děi qù."
    assert pinyin_line("他跑得很快。") == "tā pǎo de hěn kuài."
    assert pinyin_line("他得了第一名。") == "tā dé le dìyī míng."
    assert pinyin_line("朋友们看着我呢。") == "péngyoumen kànzhe wǒ ne."


def test_adverbial_de_after_a_doubled_adjective_and_the_noun_di():
    assert pinyin_line("静静地休息。") == "jìngjìng de xiūxi."  # AA地: one word, both tones kept
    assert pinyin_line("她高高兴兴地回家了。") == "tā gāogāoxìngxìng de huíjiā le."
    assert pinyin_line("他慢慢地走。") == "tā mànmàn de zǒu."
    assert pinyin_line("这块地很大。") == "zhè kuài dì hěn dà."  # the noun 'ground'
    assert pinyin_line("我们走走吧。") == "wǒmen zǒuzou ba."  # a doubled verb stays light


def test_cue_words_give_the_same_line_as_the_text():
    text = "这件衣服太贵了，便宜一点儿吧。"
    assert pinyin_of_words(split_words(text)) == pinyin_line(text)


def test_tones_with_neutral_as_5():
    assert tone_numbers("我的好吗") == [3, 5, 3, 5]
    assert tone_numbers("妈妈") == [1, 5]


def test_tone_html_colours_each_syllable_as_written():
    out = tone_html("你好")
    assert out.count("<ruby") == 2
    assert TONE_COLOURS[3] in out and "<rt>nǐ</rt>" in out
    neutral = tone_html("妈妈")
    assert f'color:{TONE_COLOURS[5]}">妈<rt>ma</rt>' in neutral
    assert f'color:{TONE_COLOURS[2]}">一<rt>yí</rt>' in tone_html("一样")
    assert f'color:{TONE_COLOURS[5]}">儿<rt>r</rt>' in tone_html("玩儿")


def test_ruby_and_practice_use_the_line_syllables():
    """One reading feeds the line, the ruby and Practice: their syllables are the line's, in order."""
    for row in reference_rows()[::7]:
        line = pinyin_line(row["text"])
        ruby = "".join(s for w in words_with_pinyin(row["text"]) for s in w.syllables)
        practised = "".join(s.marked for s in syllables(row["text"]))
        assert ruby == practised
        assert practised.lower() == "".join(c for c in line.lower() if c.isalpha()), row["text"]


def test_practice_tones_dictionary_and_spoken():
    """`tone` is the dictionary's (yī, bù whatever follows); `spoken_tone` adds 3-3 sandhi to the line's tones."""
    got = [(s.hanzi, s.tone, s.spoken_tone) for s in syllables("我也不一样")]
    assert got == [("我", 3, 2), ("也", 3, 3), ("不", 4, 4), ("一", 1, 2), ("样", 4, 4)]
    assert [s.spoken_tone for s in syllables("你好吗")] == [2, 3, 5]


def test_translate_and_pinyin_share_one_dictionary_index():
    assert gloss._cedict_index() is cedict.entries_by_word()


def run_pinyin(*texts: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app", "pinyin", *texts], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_cli_prints_one_line_per_text_as_the_subtitles_show_it():
    result = run_pinyin("我们一起去北京吧。", "女兒在西安", "你好")
    assert result.returncode == 0, result.stderr
    # Traditional input is read as the Simplified transcript the subtitles hold (女兒 → 女儿).
    assert result.stdout.splitlines() == ["wǒmen yìqǐ qù Běijīng ba.", "nǚ'ér zài Xī'ān", "nǐhǎo"]


def test_cli_without_text_says_so_in_one_error_line():
    for args in ((), ("",)):
        result = run_pinyin(*args)
        assert result.returncode == 1
        assert [line for line in result.stderr.splitlines() if line.strip()] == [
            line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
