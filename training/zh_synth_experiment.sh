#!/usr/bin/env bash
# The "Improving the model" table of the README, row by row, on ../shared/data/zh-synth.
#
#   bash training/zh_synth_experiment.sh ROW...     rows: features base decoder long lora share25 top3 top3more top6 top6int8 all
#
# Every row after `features` needs `features` first (seconds). The first training row also
# computes the frozen encoder's outputs for train + dev once (~35 min on 2 CPU cores, 5 GB on
# disk under out/zh-synth/encoder-cache); later rows reuse them. Results: runs/results/ROW-test.json
# (+ .csv per utterance), dev figures in runs/ROW/eval_full_results.json. Row top3 caches the
# input of encoder layer 3 instead (~25 min more, another 4.6 GB) and trains layers 3-5 + decoder.
set -euo pipefail
DATA=${DATA:-../shared/data/zh-synth}
FEATURES=${FEATURES:-out/zh-synth}
mkdir -p runs/results

# Decoder-only fine-tuning on cached encoder outputs, bf16 autocast (AVX512-BF16 CPUs and GPUs;
# use --precision fp32 elsewhere). 375 steps x 16 clips = 2 epochs of the 3,000 train clips.
# lr 2.5e-5: Whisper's pre-training lr for base (1e-3) / 40, the rule of thumb from the HF fine-tuning event.
COMMON=(--data "$FEATURES" --base embedded --cache-encoder-outputs true --precision bf16
        --per-device-train-batch-size 16 --max-steps 375 --warmup-steps 40 --learning-rate 2.5e-5
        --eval-strategy no --save-steps 125 --activation-checkpointing false --dataloader-num-workers 0
        --logging-steps 25 --seed 42)

evaluate() {  # $1 row name, $2 model
  python -m training.evaluate --model "$2" --data "$DATA" --split test \
    --csv "runs/results/$1-test.csv" --json "runs/results/$1-test.json"
}

train_export_evaluate() {  # $1 row name, rest: options on top of COMMON
  local row=$1; shift
  python -m training "${COMMON[@]}" --out "runs/$row" "$@"
  python -m training.export "runs/$row" --out "runs/$row-ct2" --quantization int8
  evaluate "$row" "runs/$row-ct2"
}

for row in "$@"; do
  case $row in
    features) python -m featurize --source "cv:$DATA:train+dev" --out "$FEATURES" --audio-codec original --num-proc 2 ;;
    base) evaluate base embedded ;;
    decoder) train_export_evaluate decoder ;;                                  # model: full decoder
    lora) train_export_evaluate lora --lora true --learning-rate 1e-3 ;;       # model: LoRA r32 on the decoder
    long) train_export_evaluate long --max-steps 940 --learning-rate 5e-5 ;;   # model: 5 epochs, lr 5e-5
    share25) train_export_evaluate share25 --train-share 0.25 ;;                # data: 750 of the 3,000 clips
    top3) train_export_evaluate top3 --train-encoder-top-layers 3 ;;           # model: + top 3 of 6 encoder layers
    top3more) train_export_evaluate top3more --base runs/top3 --train-encoder-top-layers 3 \
                --max-steps 188 --warmup-steps 20 --learning-rate 1e-5 ;;      # model: 1 more epoch on top3 (same cache)
    top6) train_export_evaluate top6 --base runs/top3more --train-encoder-top-layers 6 \
                --max-steps 188 --warmup-steps 20 --learning-rate 1.5e-5 --save-steps 47 ;;  # model: + all 6 layers, 1 epoch
    top6int8) train_export_evaluate top6int8 --base runs/top6 --train-encoder-top-layers 6 --int8-aware true \
                --max-steps 125 --warmup-steps 10 --learning-rate 1e-5 --save-steps 42 ;;  # model: int8-aware, 2/3 epoch
    all) "$0" features base decoder long share25 lora top3 top3more top6 top6int8 ;;
    *) echo "unknown row: $row (features base decoder long lora share25 top3 top3more all)" >&2; exit 2 ;;
  esac
done
