from app.language.text import (cer, char_errors, clean_transcript, clean_transcript_aligned, normalize_for_cer,
                      normalize_label, split_words, to_simplified, traditional_only_chars, unify_width)


def test_t2s_and_traditional_detection():
    assert to_simplified("這是我兒子，那是我女兒。") == "这是我儿子，那是我女儿。"
    assert traditional_only_chars("這是我儿子") == ["這"]
    assert traditional_only_chars("这是我儿子") == []


def test_width_unified_but_chinese_punctuation_kept():
    assert unify_width("ＡＢＣ１２３，") == "ABC123，"
    assert normalize_label("他們說：ＯＫ！") == "他们说：OK！"


def test_clean_transcript_makes_punctuation_chinese_only_after_hanzi():
    assert clean_transcript("這是我兒子,那是我女兒.") == "这是我儿子，那是我女儿。"
    assert clean_transcript("价格是3.5元, OK") == "价格是3.5元，OK"


def test_aligned_cleaning_keeps_length():
    raw = "乾隆皇帝喜歡乾燥,天氣.3.5"
    out = clean_transcript_aligned(raw)
    assert len(out) == len(raw)
    assert not traditional_only_chars(out)


def test_cer_normalises_script_punctuation_and_width():
    assert normalize_for_cer("這是ＡＢＣ，好嗎？") == "这是abc好吗"
    assert cer(["这是我儿子，那是我女儿。"], ["這是我兒子,那是我女兒"]) == 0.0
    assert cer(["他常常上网"], ["他成成上王"]) == 3 / 5
    assert char_errors("他常常上网。", "他成成上王") == 3


def test_split_words_uses_jieba():
    assert split_words("我在银行工作") == ["我", "在", "银行", "工作"]


def test_spread_span_shares_a_word_span_evenly_among_its_characters():
    from app.language.text import spread_span

    assert spread_span("這個", 0.0, 0.36) == [("這", 0.0, 0.18), ("個", 0.18, 0.36)]
    assert spread_span(["我"], 1.0, 1.5) == [("我", 1.0, 1.5)]
    assert spread_span("", 1.0, 2.0) == []
