"""The feature pipeline (featurize/): sources, filters, labels, storage, resume, and the reader.

Runs offline on a 40-clip slice of the zh-synth corpus (30 train + 10 dev), linked into a
temporary Common Voice-shaped folder so the real `cv:` source code path is exercised.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.conftest import ROOT, clip_path, read_split, write_split

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("datasets")

from app.language.text import normalize_label  # noqa: E402
from featurize import cli, features, labels, manifest, reader  # noqa: E402
from featurize.sources import copies, parse_source  # noqa: E402

# One clip's STFT is tiny; torch's thread pool only fights the other processes on 2 shared cores.
torch.set_num_threads(1)

PREFIX = [50258, 50260, 50359, 50363]  # <|startoftranscript|><|zh|><|transcribe|><|notimestamps|>
EOT = 50257
HEADER = ["client_id", "path", "sentence", "up_votes", "down_votes", "age", "gender", "accents", "locale", "segment"]


@pytest.fixture(scope="module")
def mini_cv(tmp_path_factory, zh_synth) -> Path:
    """A Common Voice release folder holding 30 train + 10 dev clips of zh-synth."""
    root = tmp_path_factory.mktemp("mini_cv")
    (root / "clips").mkdir()
    for split, rows in (("train", read_split("train")[::100]), ("dev", read_split("dev")[::30])):
        for row in rows:
            (root / "clips" / row["path"]).symlink_to(clip_path(row))
        write_split(root, split, rows, HEADER)
    return root


def featurize(*args: str) -> int:
    return cli.main([*map(str, args), "--quiet"])


def table(out: Path, split: str):
    files = manifest.read(out)["splits"][split]["files"]
    import pyarrow as pa

    return pa.concat_tables([pq.read_table(out / f) for f in files])


def reference_log_mel(path: Path) -> np.ndarray:
    """What the HF recipe computes: WhisperFeatureExtractor on the app's own decode of the file."""
    from app.speech.audio import load_audio

    return features.log_mel(load_audio(path), features.feature_extractor(80))


# --- labels -----------------------------------------------------------------------------------------


def test_labels_follow_the_hf_whisper_recipe():
    from transformers import WhisperTokenizerFast

    from app.speech.model import embedded_model_dir

    maker = labels.LabelMaker(labels.load_tokenizer(None))
    text = maker.text("老師，您好！ＡＢＣ")
    assert text == normalize_label("老師，您好！ＡＢＣ") == "老师，您好！ABC"
    ids = maker.ids(text, 1.0)
    assert ids[:4] == PREFIX and ids[-1] == EOT
    assert maker.decodes_back(ids, text)
    # Same ids as a plain WhisperTokenizerFast with set_prefix_tokens, as in the HF fine-tuning recipe.
    plain = WhisperTokenizerFast(tokenizer_file=str(embedded_model_dir() / "tokenizer.json"))
    plain.set_prefix_tokens(language="zh", task="transcribe")
    assert plain(text).input_ids == ids
    assert plain.decode(ids, skip_special_tokens=True) == text

    timed = labels.LabelMaker(labels.load_tokenizer(None), timestamps=True)
    ids = timed.ids(text, 1.37)
    tokens = timed.tokenizer.convert_ids_to_tokens(ids)
    assert tokens[:4] == ["<|startoftranscript|>", "<|zh|>", "<|transcribe|>", "<|0.00|>"]
    assert tokens[-2:] == ["<|1.36|>", "<|endoftext|>"] and timed.decodes_back(ids, text)
    assert timed.tokenizer.decode(ids, decode_with_timestamps=True).endswith("ABC<|1.36|><|endoftext|>")


# --- source syntax ---------------------------------------------------------------------------------


def test_source_syntax(mini_cv, tmp_path):
    spec = parse_source(f"cv:{mini_cv}:train+dev@0.5")
    assert (spec.kind, spec.location, spec.splits, spec.weight) == ("cv", str(mini_cv), ("train", "dev"), 0.5)
    spec = parse_source("hf:mozilla-foundation/common_voice_11_0:zh-CN:train+validation")
    assert (spec.location, spec.config, spec.splits, spec.weight) == (
        "mozilla-foundation/common_voice_11_0", "zh-CN", ("train", "validation"), 1.0)
    assert parse_source("hf:org/name:test").splits == ("test",) and parse_source("hf:org/name").config is None
    listing = tmp_path / "list.csv"
    listing.write_text("path,sentence\n")
    assert parse_source(f"manifest:{listing}:dev@2").splits == ("dev",)
    from app.base.errors import UserError

    for bad in ("librispeech:x", f"cv:{mini_cv}:train@abc", f"cv:{mini_cv}:train@-1", f"cv:{tmp_path}/nope",
                f"cv:{mini_cv}:validated", "manifest:missing.tsv"):
        with pytest.raises(UserError):
            parse_source(bad)


def test_weights_are_per_clip_and_seeded():
    spec = parse_source("hf:org/name:train@0.5")
    kept = [copies(0.5, 0, spec, "train", str(i)) for i in range(2000)]
    assert 900 < sum(kept) < 1100
    assert kept == [copies(0.5, 0, spec, "train", str(i)) for i in range(2000)]
    assert kept != [copies(0.5, 1, spec, "train", str(i)) for i in range(2000)]
    assert {copies(2.0, 0, spec, "train", str(i)) for i in range(50)} == {2}


# --- featurise and read back -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def logmel_out(mini_cv, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("logmel")
    assert featurize("--source", f"cv:{mini_cv}:train+dev", "--out", out, "--store", "logmel",
                     "--clips_per_shard", "16") == 0
    return out


def test_logmel_store_reads_back_as_the_feature_extractors_output(logmel_out, mini_cv):
    info = manifest.read(logmel_out)
    assert info["splits"]["train"]["rows"] == 30 and info["splits"]["dev"]["rows"] == 10
    assert [Path(f).name for f in info["splits"]["train"]["files"]] == [
        "train-00000-of-00002.parquet", "train-00001-of-00002.parquet"]
    assert info["tokenizer"]["prefix_ids"] == PREFIX and info["feature_extractor"]["feature_size"] == 80
    assert info["total"]["fraction_of_padded_float32"] < 1 / 20

    dev = reader.load_split(logmel_out, "dev", keep=("text",), cache_dir=str(logmel_out / ".cache"))
    sentences = {r["path"]: r["sentence"] for r in read_split("dev")}
    ids = table(logmel_out, "dev").column("id").to_pylist()
    for i, row in enumerate(dev):
        clip = ids[i].split("#")[0]
        assert row["text"] == normalize_label(sentences[clip])
        assert row["labels"][:4] == PREFIX and row["labels"][-1] == EOT
        assert row["input_features"].shape == (80, 3000)
        # float16 storage (step 5e-4 near 1); the reference's mp3 decoder (ffmpeg) also differs from
        # libsndfile's by ~1e-5 per sample, which moves a few near-silent bins by up to ~0.01.
        diff = np.abs(row["input_features"] - reference_log_mel(mini_cv / "clips" / clip))
        assert diff.mean() < 1e-3 and diff.max() < 0.03, (diff.mean(), diff.max())


@pytest.mark.slow  # two featurize runs and 20 reference decodes: ~8 s each on 2 shared cores
@pytest.mark.parametrize("codec, mean_tolerance", [("flac", 0.002), ("opus", 0.08)])
def test_audio_store_reads_back_close_to_the_original(mini_cv, tmp_path, codec, mean_tolerance):
    out = tmp_path / codec
    assert featurize("--source", f"cv:{mini_cv}:dev", "--out", out, "--audio_codec", codec) == 0
    rows = table(out, "dev")
    dev = reader.load_split(out, "dev", cache_dir=str(tmp_path / ".cache"))
    errors = []
    for i, row in enumerate(dev):
        clip = rows.column("id")[i].as_py().split("#")[0]
        errors.append(np.abs(row["input_features"] - reference_log_mel(mini_cv / "clips" / clip)).mean())
    # flac is lossless (16-bit rounding only); Opus adds a second lossy generation on top of the mp3
    assert max(errors) < mean_tolerance, errors
    assert abs(sum(rows.column("duration").to_pylist()) - manifest.read(out)["total"]["audio_seconds"]) < 0.01


def test_collator_pads_labels_and_drops_the_start_token(logmel_out):
    train = reader.load_split(logmel_out, "train", cache_dir=str(logmel_out / ".cache"))
    rows = [train[i] for i in range(4)]
    batch = reader.WhisperCollator()(rows)
    assert tuple(batch["input_features"].shape) == (4, 80, 3000)
    assert batch["input_features"].dtype == torch.float32
    width = max(len(r["labels"]) for r in rows) - 1
    assert tuple(batch["labels"].shape) == (4, width)
    for i, r in enumerate(rows):
        assert batch["labels"][i, : len(r["labels"]) - 1].tolist() == r["labels"][1:]
        assert (batch["labels"][i, len(r["labels"]) - 1 :] == -100).all()


def test_cluster_shards_add_up_to_the_single_run(logmel_out, mini_cv, tmp_path):
    out = tmp_path / "cluster"
    common = ["--source", f"cv:{mini_cv}:train+dev", "--out", out, "--store", "logmel", "--clips_per_shard", "16"]
    assert featurize(*common, "--num_shards", "2", "--shard_index", "1") == 0
    assert not (out / "manifest.json").exists()  # shard 0's jobs have not run yet
    assert featurize(*common, "--num_shards", "2", "--shard_index", "0") == 0
    assert manifest.read(out)["total"]["rows"] == 40
    for split in ("train", "dev"):
        assert table(out, split).drop(["log_mel"]).equals(table(logmel_out, split).drop(["log_mel"]))


# --- bad input ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def messy_manifest(tmp_path_factory, zh_synth) -> Path:
    """Three good clips, random bytes named .mp3, a 31-second clip, an empty sentence."""
    import shutil

    import soundfile

    folder = tmp_path_factory.mktemp("messy")
    good = read_split("test")[:3]
    for row in good:  # inside the manifest's folder: paths outside it are refused
        shutil.copy(clip_path(row), folder / row["path"])
    (folder / "corrupt.mp3").write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    pieces, total = [], 0
    for row in read_split("test"):
        audio, rate = soundfile.read(clip_path(row), dtype="float32")
        assert rate == 16000
        pieces.append(audio)
        total += audio.size
        if total > 31 * 16000:
            break
    soundfile.write(folder / "long.wav", np.concatenate(pieces)[: 31 * 16000], 16000)
    rows = [{"path": r["path"], "sentence": r["sentence"]} for r in good]
    rows += [{"path": "corrupt.mp3", "sentence": "坏文件"}, {"path": "long.wav", "sentence": "三十一秒"},
             {"path": str(folder / good[0]["path"]), "sentence": "  "}]  # absolute, but inside the folder
    write_split(folder, "list", rows, ["path", "sentence"])
    return folder / "list.tsv"


def test_bad_clips_are_skipped_counted_and_logged(messy_manifest, tmp_path, caplog, capsys):
    out = tmp_path / "messy"
    assert featurize("--source", f"manifest:{messy_manifest}", "--out", out) == 0
    info = manifest.read(out)
    assert info["total"]["rows"] == 3
    assert info["total"]["dropped"] == {"audio_too_long": 1, "decode_failed": 1, "empty_sentence": 1}
    assert any("corrupt.mp3" in f for f in info["failed"])
    assert any("corrupt.mp3" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)
    summary = capsys.readouterr().out
    assert "audio_too_long 1" in summary and "decode_failed 1" in summary and "corrupt.mp3" in summary


@pytest.fixture
def hostile_manifest(tmp_path, zh_synth) -> Path:
    """A manifest as an attacker (or a broken export) writes it: shifted and short rows, paths out of
    the folder, devices, a FIFO, a folder, a link to /dev/zero, a file over the size limit."""
    import shutil

    folder = tmp_path / "hostile"
    folder.mkdir()
    good = read_split("test")[:2]
    for row in good:
        shutil.copy(clip_path(row), folder / row["path"])
    shutil.copy(clip_path(good[0]), tmp_path / "outside.mp3")
    os.mkfifo(folder / "pipe.mp3")
    (folder / "folder.mp3").mkdir()
    (folder / "zero.mp3").symlink_to("/dev/zero")
    (folder / "big.wav").write_bytes(bytes(200_000))
    lines = ["path\tsentence",
             f"{good[0]['path']}\t{good[0]['sentence']}",
             f"{good[1]['path']}\t{good[1]['sentence']}",
             f"{good[0]['path']}\t今天真\t冷，我穿新衣服。",  # line 4: a tab inside the sentence
             f"{good[1]['path']}",  # line 5: no sentence field at all
             str(clip_path(good[0])) + "\t绝对路径",  # line 6
             "../outside.mp3\t上一级",  # line 7
             "/dev/zero\t设备",  # line 8
             "zero.mp3\t链接",  # line 9
             "pipe.mp3\t管道",  # line 10
             "folder.mp3\t文件夹",  # line 11
             "big.wav\t太大",  # line 12
             "nope.mp3\t不存在"]  # line 13
    (folder / "list.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder / "list.tsv"


def test_hostile_manifest_rows_are_refused_counted_and_named(hostile_manifest, tmp_path, caplog, capsys):
    out = tmp_path / "out"
    good = read_split("test")[:2]
    assert featurize("--source", f"manifest:{hostile_manifest}", "--out", out, "--max_file_mb", "0.1") == 0
    info = manifest.read(out)
    assert info["total"]["dropped"] == {"extra_fields": 1, "missing_fields": 1, "outside_dataset": 3,
                                        "not_a_file": 3, "file_too_large": 1, "missing_file": 1}
    # Only the two good rows, with their whole sentences: the shifted row's 今天真 is not among them.
    assert table(out, "train").column("text").to_pylist() == [normalize_label(r["sentence"]) for r in good]
    named = info["total"]["dropped_clips"]
    assert named["extra_fields"] == [f"list.tsv line 4 ({good[0]['path']}): 3 fields, the header has 2"]
    assert [n.split(" (")[0] for n in named["outside_dataset"]] == ["list.tsv line 6", "list.tsv line 7",
                                                                    "list.tsv line 8"]
    assert sorted(Path(n.split(": ")[0]).name for n in named["not_a_file"]) == ["folder.mp3", "pipe.mp3", "zero.mp3"]
    assert Path(named["file_too_large"][0].split(": ")[0]).name == "big.wav"
    summary = capsys.readouterr().out
    for reason in info["total"]["dropped"]:
        assert f"    {reason}: " in summary, (reason, summary)
    assert "list.tsv line 4" in summary and "pipe.mp3" in summary and "outside.mp3" in summary
    refused = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "refused" in r.getMessage()]
    assert len(refused) == 10 and any("list.tsv line 5" in m and "missing_fields" in m for m in refused)


def test_outside_paths_are_read_only_when_allowed(hostile_manifest, tmp_path, capsys):
    out = tmp_path / "out"
    assert featurize("--source", f"manifest:{hostile_manifest}", "--out", out, "--allow_outside_paths",
                     "--max_file_mb", "0.1") == 0
    dropped = manifest.read(out)["total"]["dropped"]
    # The absolute and ../ clips are read now; /dev/zero still is not (not a regular file).
    assert dropped["not_a_file"] == 4 and "outside_dataset" not in dropped
    assert manifest.read(out)["total"]["rows"] == 4
    # The switch changes which rows a shard holds: resuming into the same folder without it is refused.
    assert featurize("--source", f"manifest:{hostile_manifest}", "--out", out, "--max_file_mb", "0.1") == 1
    assert "made with other sources or options" in capsys.readouterr().err


def test_only_regular_files_within_the_limit_are_read(tmp_path):
    from featurize.sources import Refused, read_regular_file

    clip = tmp_path / "clip.bin"
    clip.write_bytes(b"x" * 1000)
    assert read_regular_file(str(clip), 1000) == b"x" * 1000
    for path, limit, reason in (("/dev/zero", 10**9, "not_a_file"), (str(tmp_path), 10**9, "not_a_file"),
                                (str(clip), 999, "file_too_large"), (str(tmp_path / "gone"), 10, "missing_file")):
        with pytest.raises(Refused) as refused:
            read_regular_file(path, limit)
        assert refused.value.reason == reason, path


def test_timestamps_weights_and_augmentation(messy_manifest, tmp_path):
    out = tmp_path / "aug"
    args = ["--source", f"manifest:{messy_manifest}@2", "--out", out, "--timestamps", "--speed_perturb", "0.9,1.1",
            "--noise_snr_db", "15:25", "--audio_codec", "original"]
    assert featurize(*args) == 0
    rows = table(out, "train").to_pylist()
    # 3 good clips x weight 2, plus the 31 s clip's copies that speed 1.1 brought under 30 s
    assert 6 <= len(rows) <= 8 and all(r["duration"] <= 30 for r in rows)
    assert all(r["augment"].startswith("speed=") and "noise=white@" in r["augment"] for r in rows)
    first, second = rows[0], rows[1]
    assert first["id"].endswith("#0") and second["id"].endswith("#1") and first["audio"] != second["audio"]
    tokenizer = labels.load_tokenizer(None)
    for r in rows:
        tokens = tokenizer.convert_ids_to_tokens(r["labels"])
        assert tokens[3] == "<|0.00|>" and tokens[-1] == "<|endoftext|>"
        assert abs(float(tokens[-2].strip("<|>")) - r["duration"]) <= 0.011
    # Same seed, same rows; another seed, other augmentation.
    again = tmp_path / "again"
    assert featurize(*[str(a).replace(str(out), str(again)) for a in args]) == 0
    assert table(again, "train").equals(table(out, "train"))
    other = tmp_path / "other"
    assert featurize(*[str(a).replace(str(out), str(other)) for a in args], "--seed", "1") == 0
    assert table(other, "train").column("augment") != table(out, "train").column("augment")


def test_hf_dataset_folder_source(tmp_path, zh_synth):
    """An hf: source read offline from a local folder of Parquet files (as the Hub serves them)."""
    import pyarrow as pa
    from datasets import Audio, Features, Value

    rows = read_split("dev")[:5]
    schema = Features({"audio": Audio(sampling_rate=16000), "sentence": Value("string")}).arrow_schema
    (tmp_path / "hfds" / "data").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(
        [{"audio": {"bytes": clip_path(r).read_bytes(), "path": r["path"]}, "sentence": r["sentence"]} for r in rows],
        schema=schema), tmp_path / "hfds" / "data" / "validation-00000-of-00001.parquet")
    out = tmp_path / "out"
    assert featurize("--source", f"hf:{tmp_path / 'hfds'}:validation", "--out", out) == 0
    got = table(out, "validation")
    assert got.column("text").to_pylist() == [normalize_label(r["sentence"]) for r in rows]
    assert got.column("id").to_pylist() == [f"{i}#0" for i in range(5)]


def test_bad_arguments_fail_fast_with_one_line(mini_cv, tmp_path, capsys):
    no_sentence = tmp_path / "no_sentence.csv"
    no_sentence.write_text("path,transcript\nclips/a.mp3,你好\n")
    a_file = tmp_path / "file"
    a_file.write_text("")
    cases = {
        "no column 'sentence'": ["--source", f"manifest:{no_sentence}", "--out", tmp_path / "o1"],
        "unknown source kind": ["--source", "librispeech:/data", "--out", tmp_path / "o2"],
        "cannot write to --out": ["--source", f"cv:{mini_cv}:dev", "--out", a_file / "sub"],
        "--speed-perturb": ["--source", f"cv:{mini_cv}:dev", "--out", tmp_path / "o3", "--speed_perturb", "3"],
    }
    for message, args in cases.items():
        assert featurize(*args) == 1, message
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("error: ") and message in err[-1], err
        assert "Traceback" not in "\n".join(err)
    assert not list(tmp_path.glob("o*/data/*.parquet"))


def test_other_options_in_the_same_folder_are_refused(mini_cv, tmp_path, capsys):
    out = tmp_path / "out"
    assert featurize("--source", f"cv:{mini_cv}:dev", "--out", out) == 0
    assert featurize("--source", f"cv:{mini_cv}:dev", "--out", out, "--store", "logmel") == 1
    assert "made with other sources or options" in capsys.readouterr().err
    assert featurize("--source", f"cv:{mini_cv}:dev", "--out", out, "--store", "logmel", "--overwrite") == 0
    assert manifest.read(out)["store"] == "logmel"


def test_help_explains_every_option():
    text = cli.parser().format_help()
    for option in ("--source", "--out", "--store", "--audio_codec", "--model", "--timestamps", "--num_proc",
                   "--num_shards", "--shard_index", "--push_to_hub", "--speed_perturb", "--noise_snr_db", "--seed",
                   "cv:DIR", "hf:DATASET", "manifest:FILE", "@WEIGHT"):
        assert option in text
    actions = [a for a in cli.parser()._actions if a.dest != "help"]
    assert all(a.help for a in actions)


def _cli(*args, env=None, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "featurize", *map(str, args), "--quiet"], cwd=ROOT,
                            env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kwargs)


@pytest.mark.slow
def test_offline_hub_source_and_push_fail_in_one_line(mini_cv, tmp_path):
    offline = {"HF_HUB_OFFLINE": "1"}
    for args in (["--source", "hf:mozilla-foundation/common_voice_11_0:zh-CN:train", "--out", tmp_path / "a"],
                 ["--source", f"cv:{mini_cv}:dev", "--out", tmp_path / "b", "--push_to_hub", "someone/zh-synth"]):
        proc = _cli(*args, env=offline)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 1, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert not list(tmp_path.glob("*/data/*.parquet"))


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_rows(mini_cv, tmp_path):
    args = ["--source", f"cv:{mini_cv}:train+dev", "--clips_per_shard", "2", "--speed_perturb", "0.9,1.0,1.1",
            "--noise_snr_db", "20"]
    reference = tmp_path / "reference"
    assert featurize(*args, "--out", reference) == 0

    out = tmp_path / "killed"
    proc = _cli(*args, "--out", out)
    deadline = time.time() + 120
    while not list((out / "data").glob("*.parquet")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = list((out / "data").glob("*.parquet"))
    assert 1 <= len(finished) < 20, "the run was not killed half-way"
    assert not (out / "manifest.json").exists()

    proc = _cli(*args, "--out", out)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert f"{len(finished)} already there" in stdout
    for split in ("train", "dev"):
        got, want = table(out, split), table(reference, split)
        ids = got.column("id").to_pylist()
        assert len(ids) == len(set(ids)) == want.num_rows
        assert got.equals(want)  # same rows, same order, byte-identical audio
    assert not list((out / "data").glob(".*.tmp"))
    assert json.loads((out / "manifest.json").read_text())["total"]["rows"] == 40


@pytest.mark.slow
def test_num_proc_gives_the_same_rows(logmel_out, mini_cv, tmp_path):
    out = tmp_path / "parallel"
    proc = _cli("--source", f"cv:{mini_cv}:train+dev", "--out", out, "--store", "logmel", "--clips_per_shard", "16",
                "--num_proc", "2")
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    for split in ("train", "dev"):
        assert table(out, split).equals(table(logmel_out, split))


def test_a_clip_of_several_timed_sentences_is_labelled_one_segment_per_sentence(zh_synth, tmp_path):
    """The many-voice corpus's `timing` column → `timed_labels`: <|start|> sentence <|end|> per sentence,
    moved with speed perturbation; a clip without (or with a wrong) timing keeps it empty."""
    from app.speech.audio import SAMPLE_RATE, load_audio, write_audio
    from tests.conftest import joined_audio

    first, second = read_split("train")[:2]
    root = tmp_path / "timed"
    (root / "clips").mkdir(parents=True)
    write_audio(joined_audio([first, second], 0.3), root / "clips" / "two.wav")
    write_audio(joined_audio([first], 0.0), root / "clips" / "one.wav")
    one = load_audio(clip_path(first)).size / SAMPLE_RATE
    two = load_audio(clip_path(second)).size / SAMPLE_RATE
    sentence = first["sentence"] + second["sentence"]
    timing = f"0.00-{one:.2f}:{len(first['sentence'])} {one + 0.3:.2f}-{one + 0.3 + two:.2f}:{len(second['sentence'])}"
    rows = [{**first, "path": "two.wav", "sentence": sentence, "timing": timing},
            {**first, "path": "one.wav", "timing": "0.00-1.00:999"}]  # does not cover the sentence
    write_split(root, "train", rows, [*HEADER, "timing"])
    out = tmp_path / "out"
    assert featurize("--source", f"cv:{root}:train", "--out", out, "--speed_perturb", "0.9") == 0
    got = {r["id"].split("#")[0]: r for r in table(out, "train").to_pylist()}
    tokenizer = labels.load_tokenizer(None)
    text = tokenizer.decode(got["two.wav"]["timed_labels"], decode_with_timestamps=True)
    start = f"<|{round((one + 0.3) / 0.9 / 0.02) * 0.02:.2f}|>"
    assert text.startswith("<|startoftranscript|><|zh|><|transcribe|><|0.00|>" + normalize_label(first["sentence"]))
    assert start + normalize_label(second["sentence"]) in text and text.endswith("|><|endoftext|>")
    assert text.count("<|") == 8 and got["two.wav"]["labels"][:4] == PREFIX  # the plain form is unchanged
    assert got["one.wav"]["timed_labels"] == []
