#!/usr/bin/env bash
# Train the PConv UNet on one GPU for a fixed wall-time budget, continuing from the shipped weights.
#
#   scripts/gpu_train.sh pack [PHOTOS_DIR] [EVAL_DIR]  # here: .gpu/photos.tar (short side 256, quality 55) and
#                                                      # .gpu/eval/ (EVAL_PHOTOS photos of the evaluation set, 12);
#                                                      # refuses a pack that, with the tracked files, would not
#                                                      # leave HEADROOM_BYTES (4 MiB) under TRAVEL_LIMIT_BYTES
#                                                      # (64 MiB): docs added later must not stop a GPU run
#   scripts/gpu_train.sh check                         # on the GPU machine, first: bench/gpu_check.py into
#                                                      # $OUT/check (a minute or two of the device's time)
#   scripts/gpu_train.sh run [MINUTES]                 # on the GPU machine (device tool, carry .gpu): bf16
#                                                      # autocast, batch 64, the last FINETUNE_MINUTES in the
#                                                      # fine-tuning phase; then evaluates the new weights and
#                                                      # the ones it started from on .gpu/eval at native size.
#                                                      # $OUT/run holds model.safetensors, log.jsonl, args.json,
#                                                      # eval.json, eval-start.json and train.log (the model
#                                                      # in float16: files over 16 MiB do not come back, so a
#                                                      # larger model comes back in SPLIT_BYTES parts:
#                                                      # `cat model.safetensors.part-* > model.safetensors`)
#
# The weights to continue from travel as the tracked file (INIT, default the shipped one): no second copy.
# INIT=none WIDTH=1.0 trains the paper's full width from scratch instead (the comparison the budget may allow).
# The GPU machine has no network; its image has torch, cv2, safetensors, tqdm, Pillow and scikit-image.
# Environment: GPU_DIR (default .gpu), OUT, PYTHON, DEVICE (default cuda; bf16 autocast only there), INIT,
# FINETUNE_MINUTES, EVAL_PHOTOS and TRAIN_ARGS (appended to pconv.train's arguments, so they override) let
# the tests run it on a CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}
gpu=${GPU_DIR:-.gpu}
python=${PYTHON:-python3}
case "$mode" in
pack)
    photos=${2:-../shared/datasets/photos/train}
    eval_dir=${3:-../shared/datasets/photos/eval}
    limit=${TRAVEL_LIMIT_BYTES:-67108864}
    headroom=${HEADROOM_BYTES:-4194304}
    rm -rf "$gpu" && mkdir -p "$gpu/photos" "$gpu/eval"
    "${PYTHON:-.venv/bin/python}" - "$photos" "$gpu/photos" "$eval_dir" "$gpu/eval" "${EVAL_PHOTOS:-12}" <<'PY'
import shutil
import sys
from pathlib import Path

from PIL import Image

from pconv.evaluate import list_eval_photos

src, dst, eval_src, eval_dst, eval_count = sys.argv[1:]
for p in sorted(Path(src).glob("*.jpg")):
    with Image.open(p) as im:
        im = im.convert("RGB")
        scale = 256 / min(im.size)
        if scale < 1:
            im = im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)
        im.save(Path(dst) / p.name, quality=55)
for p in list_eval_photos(eval_src, int(eval_count)):  # the originals: evaluation is at native size
    shutil.copy(p, Path(eval_dst) / p.name)
PY
    tar -C "$gpu" -cf "$gpu/photos.tar" photos && rm -r "$gpu/photos"
    tracked=$(git ls-files -z | xargs -0 stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}')
    packed=$(du -sb "$gpu" | cut -f1)
    echo "pack $packed bytes + tracked files $tracked bytes = $((packed + tracked)) of $limit ($headroom kept free)"
    if [ $((packed + tracked)) -gt $((limit - headroom)) ]; then
        echo "too big to travel to the GPU machine: shrink the pack" >&2
        exit 3
    fi
    ;;
run)
    minutes=${2:-8}
    out=${OUT:-$gpu/out}
    device=${DEVICE:-cuda}
    init=${INIT:-pconv/weights/pconv.safetensors}
    width=${WIDTH:-0.5}
    photos=$(mktemp -d)
    trap 'rm -rf "$photos"' EXIT
    mkdir -p "$out/run"
    tar -C "$photos" -xf "$gpu/photos.tar"
    extra=()
    [ "$init" != none ] && extra+=(--init "$init")
    if [ "$device" = cuda ]; then
        nvidia-smi --query-gpu=name,memory.total --format=csv
        # loader processes hand batches over in shared memory: make sure a small /dev/shm cannot stall them
        mount -o remount,size=16G /dev/shm 2>/dev/null || true
        df -h /dev/shm | tail -n 1
        extra+=(--amp)
    fi
    # shellcheck disable=SC2206  # TRAIN_ARGS is split into words on purpose
    extra+=(${TRAIN_ARGS:-})
    workers=$(( $(nproc) > 2 ? $(nproc) - 2 : 1 ))
    "$python" -m pconv.train --data "$photos/photos" --out "$out/run" --device "$device" \
        --batch 64 --workers "$workers" --width "$width" --steps 10000000 --w-gradient 2 \
        --max-minutes "$minutes" --finetune-minutes "${FINETUNE_MINUTES:-2}" --checkpoint-minutes 2 \
        --half-model --log-every 50 "${extra[@]}" 2>&1 | tee "$out/run/train.log" | grep -v '^\s*$' | tail -n 40
    rm -f "$out/run/checkpoint.pt" "$out/run/checkpoint.pt.tmp"  # too big to come back; the model does
    for weights in "$out/run/model.safetensors" "$init"; do
        [ "$weights" = none ] && continue
        name=eval.json; [ "$weights" = "$init" ] && name=eval-start.json
        "$python" -m pconv.evaluate --photos "$gpu/eval" --weights "$weights" --engines pconv --crop 0 \
            --json "$out/run/$name" 2>&1 | grep -v '^\s*$' | tail -n 12
    done
    split_bytes=${SPLIT_BYTES:-15728640}
    if [ "$(stat -c %s "$out/run/model.safetensors")" -gt "$split_bytes" ]; then
        split -b "$split_bytes" -d "$out/run/model.safetensors" "$out/run/model.safetensors.part-"
        rm "$out/run/model.safetensors"
    fi
    ls -l "$out/run"
    ;;
check)
    # the GPU check (bench/gpu_check.py): CUDA against CPU fills, throughput and memory per batch size;
    # $OUT/check holds gpu-check.json and gpu-check.md. CHECK_ARGS (e.g. smaller batches) for the CPU test.
    out=${OUT:-$gpu/out}
    mkdir -p "$out/check"
    # shellcheck disable=SC2086  # CHECK_ARGS is split into words on purpose
    "$python" bench/gpu_check.py --device "${DEVICE:-cuda}" --out "$out/check" ${CHECK_ARGS:-}
    ;;
*) echo "usage: $0 pack [PHOTOS_DIR] [EVAL_DIR] | run [MINUTES] | check" >&2; exit 2 ;;
esac
