"""Train Practice's tone classifier (app/practice/tone_model.py) on many voices; CPU, a minute or two.

    python -m training.tone_model --corpus ../tone-corpus [--syllables ../tone-syllables] [--write]

* `--corpus`: training.tone_corpus's folder: connected speech of four train voices (train.jsonl) whose
  syllable spans and tones are exact; its dev voice (dev.jsonl) chooses the network's size and the
  flagging threshold. Its test voices are never read here.
* `--citation`: training.citation_syllables' folder: syllables said alone in the four citation tones
  (PSOLA-resynthesised voices); the train voices' speakers are trained on, the dev voice's are scored
  beside the connected dev speech. Connected speech holds no syllable said by itself.
* `--syllables`: training.tone_syllables's folder of real isolated syllables; only the speakers in
  `--train-speakers` are used (the rest are held out for app.evaluation.tones and nothing else).

Each clip is featurised twice: with the speaker's calibration taken from the clip alone (a first attempt
in Practice) and from all the speaker's clips (the `--list` case, or a Practice session's history).
Labels are the tones spoken (`said`), so the wrong-tone clips teach what a wrong tone sounds like.
`--write` saves the model into app/practice/tone_model.npz with the threshold under which a syllable is
flagged (the model's probability of the expected tone), chosen on dev so at most 10 % of rightly spoken
syllables are flagged.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from app.practice.tone_model import MODEL_FILE, TONES, Calibration, ToneModel, speaker_calibrations, syllable_features
from app.practice.tones import pitch_track, voiced_span
from app.speech.audio import load_audio
from training.tone_corpus import VOICE_SPLITS, read

HIDDEN = (32,)
SEED = 0


def corpus_examples(folder: Path, split: str, alone: bool = False, skip_voices: frozenset = frozenset()) -> dict:
    """Features of every syllable of a tone-corpus split, both calibrations; with who spoke and what.
    `alone`: each syllable once more as if it had been said by itself (no neighbours, first and last),
    the case of a single syllable checked with `assess --pinyin mā` — connected speech has none."""
    rows = [row for row in read(folder, split) if row["voice"] not in skip_voices]
    tracks, audios = {}, {}
    for row in rows:
        audio = load_audio(folder / "clips" / row["path"])
        audios[row["path"]], tracks[row["path"]] = audio, pitch_track(audio)
    voice_calibration = speaker_calibrations((row["voice"], tracks[row["path"]]) for row in rows)
    out = defaultdict(list)

    def add(x, k, row, kind, by_itself):
        out["x"].append(x)
        out["said"].append(row["said"][k])
        out["expected"].append(row["expected"][k])
        out["wrong"].append(row["wrong"] == k)
        out["wrong_clip"].append(row["wrong"] is not None)
        out["calibration"].append(kind)
        out["speaker"].append(row["voice"])
        out["alone"].append(by_itself)

    for row in rows:
        track, spans = tracks[row["path"]], [tuple(s) if s else None for s in row["spans"]]
        audio = audios[row["path"]]
        for kind, calibration in (("clip", Calibration.of([track])), ("speaker", voice_calibration[row["voice"]])):
            x, voiced = syllable_features(track, spans, calibration, audio)
            for k in np.flatnonzero(voiced):
                add(x[k], k, row, kind, False)
                if alone:
                    single, _ = syllable_features(track, [spans[k]], calibration, audio)
                    add(single[0], k, row, kind, True)
    return {k: np.array(v) for k, v in out.items()}


def syllable_examples(folder: Path, speakers: set[str] | None) -> dict:
    """Real isolated syllables (training.tone_syllables' syllables.tsv), one calibration per speaker."""
    with open(folder / "syllables.tsv", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if speakers is None or r["speaker"] in speakers]
    audios = {r["path"]: load_audio(folder / r["path"]) for r in rows}
    tracks = {path: pitch_track(audio) for path, audio in audios.items()}
    calibrations = speaker_calibrations((r["speaker"], tracks[r["path"]]) for r in rows)
    out = defaultdict(list)
    for r in rows:
        track = tracks[r["path"]]
        span = voiced_span(track)
        if span is None:
            continue
        x, voiced = syllable_features(track, [span], calibrations[r["speaker"]], audios[r["path"]])
        if voiced[0]:
            out["x"].append(x[0])
            out["said"].append(int(r["tone"]))
            out["speaker"].append(r["speaker"])
    return {k: np.array(v) for k, v in out.items()}


def citation_examples(folder: Path, split: str) -> dict:
    """training.citation_syllables' syllables of the speakers drawn from `split`'s voices (speaker VOICE-cN)."""
    with open(folder / "syllables.tsv", encoding="utf-8") as f:
        speakers = {r["speaker"] for r in csv.DictReader(f, delimiter="\t")
                    if r["speaker"].rsplit("-c", 1)[0] in VOICE_SPLITS[split]}
    return syllable_examples(folder, speakers)


def fit(x: np.ndarray, y: np.ndarray, hidden=HIDDEN, alpha: float = 1e-3, seed: int = SEED) -> ToneModel:
    from sklearn.neural_network import MLPClassifier

    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    net = MLPClassifier(hidden_layer_sizes=hidden, alpha=alpha, max_iter=400, early_stopping=True,
                        random_state=seed).fit((x - mean) / scale, y)
    # sklearn's classes_ are the tones present, in order; widen the output layer to all TONES.
    weights, biases = [w.copy() for w in net.coefs_], [b.copy() for b in net.intercepts_]
    full_w = np.zeros((weights[-1].shape[0], len(TONES)))
    full_b = np.full(len(TONES), -30.0)
    for j, tone in enumerate(net.classes_):
        full_w[:, TONES.index(int(tone))] = weights[-1][:, j]
        full_b[TONES.index(int(tone))] = biases[-1][j]
    weights[-1], biases[-1] = full_w, full_b
    return ToneModel(mean, scale, tuple(weights), tuple(biases))


def ensemble(models: list[ToneModel]) -> ToneModel:
    """Networks of one hidden layer, trained on the same data from different seeds, as one network whose
    logits are their mean: the hidden layers side by side, the output weights stacked and divided."""
    if len(models) == 1:
        return models[0]
    first = models[0]
    if any(len(m.weights) != 2 for m in models):
        raise ValueError("only one-hidden-layer networks are merged")
    n = len(models)
    weights = (np.concatenate([m.weights[0] for m in models], axis=1), np.concatenate([m.weights[1] for m in models]) / n)
    biases = (np.concatenate([m.biases[0] for m in models]), sum(m.biases[1] for m in models) / n)
    return ToneModel(first.mean, first.scale, weights, biases)


def accuracy_4(model: ToneModel, data: dict, mask=None) -> float:
    mask = np.ones(len(data["said"]), bool) if mask is None else mask
    mask = mask & (data["said"] != 5)
    predicted = np.array(TONES)[model.probabilities(data["x"][mask]).argmax(axis=1)]
    return float((predicted == data["said"][mask]).mean()) if mask.any() else float("nan")


def flag_threshold(model: ToneModel, data: dict, false_alarms: float = 0.10) -> float:
    """The probability of the expected tone below which a syllable is flagged: the highest that flags at
    most `false_alarms` of the rightly spoken toned syllables of the clips without a wrong tone."""
    right = (~data["wrong_clip"]) & (data["expected"] != 5) & (data["calibration"] == "clip") & ~data["alone"]
    probs = model.probabilities(data["x"][right])
    chance = probs[np.arange(len(probs)), [TONES.index(int(t)) for t in data["expected"][right]]]
    return float(np.quantile(chance, false_alarms))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.tone_model", description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--citation", type=Path, help="training.citation_syllables' folder")
    parser.add_argument("--syllables", type=Path)
    parser.add_argument("--train-speakers", nargs="*", default=None,
                        help="real speakers to train on (default: none; the rest are held out)")
    parser.add_argument("--hidden", type=int, nargs="+", default=list(HIDDEN))
    parser.add_argument("--ensemble", type=int, default=1, help="networks from this many seeds, merged into one")
    parser.add_argument("--skip-voices", nargs="*", default=[], help="train voices left out (e.g. zh-synth)")
    parser.add_argument("--alone", action="store_true",
                        help="also train on each syllable as if said by itself (measured: no gain on dev, see README)")
    parser.add_argument("--write", action="store_true", help=f"save the model into {MODEL_FILE}")
    args = parser.parse_args(argv)
    if not (args.corpus / "train.jsonl").is_file():
        print(f"error: {args.corpus} has no train.jsonl: run python -m training.tone_corpus first", file=sys.stderr)
        return 1
    train, dev = corpus_examples(args.corpus, "train", args.alone, frozenset(args.skip_voices)), corpus_examples(args.corpus, "dev", alone=True)
    x, y = train["x"], train["said"]
    citation_dev = None
    if args.citation:
        citation, citation_dev = citation_examples(args.citation, "train"), citation_examples(args.citation, "dev")
        x, y = np.concatenate([x, citation["x"]]), np.concatenate([y, citation["said"]])
        print(f"citation syllables: {len(citation['said'])} from {len(set(citation['speaker']))} speakers")
    if args.syllables and args.train_speakers:
        real = syllable_examples(args.syllables, set(args.train_speakers))
        x, y = np.concatenate([x, real["x"]]), np.concatenate([y, real["said"]])
        print(f"real syllables: {len(real['said'])} from {sorted(set(real['speaker']))}")
    model = ensemble([fit(x, y, tuple(args.hidden), seed=SEED + k) for k in range(args.ensemble)])
    threshold = flag_threshold(model, dev)
    connected, alone = ~dev["alone"], dev["alone"]
    print(f"train syllables: {len(y)}  dev 4-tone accuracy: clip calibration "
          f"{accuracy_4(model, dev, connected & (dev['calibration'] == 'clip')):.1%}, speaker calibration "
          f"{accuracy_4(model, dev, connected & (dev['calibration'] == 'speaker')):.1%}; each syllable alone, "
          f"speaker calibration {accuracy_4(model, dev, alone & (dev['calibration'] == 'speaker')):.1%}; "
          f"flag below {threshold:.3f}")
    if citation_dev is not None:
        print(f"dev citation syllables (said alone, the speaker's range): {accuracy_4(model, citation_dev):.1%}")
    if args.write:
        dataclasses.replace(model, flag_below=threshold).save(MODEL_FILE)
        print(f"wrote {MODEL_FILE} ({MODEL_FILE.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
