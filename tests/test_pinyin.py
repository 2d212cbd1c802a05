from app.pinyin import TONE_COLOURS, pinyin_line, tone_html, tone_numbers, word_pinyin


def test_multi_reading_characters_follow_the_phrase():
    assert word_pinyin("银行").pinyin == "yínháng"
    assert word_pinyin("重庆").pinyin == "chóngqìng"
    assert word_pinyin("长大").pinyin == "zhǎngdà"
    assert word_pinyin("行走").pinyin == "xíngzǒu"
    assert word_pinyin("重要").pinyin == "zhòngyào"


def test_line_spaces_words_and_attaches_punctuation():
    assert pinyin_line("我在重庆的银行工作，孩子长大了。") == "wǒ zài chóngqìng de yínháng gōngzuò, háizi zhǎngdà le."


def test_tones_with_neutral_as_5():
    assert tone_numbers("我的好吗") == [3, 5, 3, 5]


def test_tone_html_colours_each_syllable():
    out = tone_html("你好")
    assert out.count("<ruby") == 2
    assert TONE_COLOURS[3] in out and "<rt>nǐ</rt>" in out
