#!/usr/bin/env bash
# Train the PConv UNet on one GPU for a fixed wall-time budget, resumable from a CPU run.
#
#   scripts/gpu_train.sh pack [PHOTOS_DIR] [MODEL]    # here: .gpu/photos.tar (about 46 MiB: short side 256, quality 60)
#                                                    # and .gpu/init.safetensors to continue from (a CPU
#                                                    # checkpoint with its optimiser is too big to carry)
#   scripts/gpu_train.sh run [MINUTES]              # on the GPU machine (device tool, carry .gpu):
#                                                    # bf16 autocast, batch 32, 12 loader processes;
#                                                    # the run folder comes back in $OUT/run
#
# The GPU machine has no network: cv2, safetensors and tqdm must be there or travel as wheels
# (see the device tool's notes). Not yet run on a GPU: no task so far was lent one.
# Environment: GPU_DIR (default .gpu), OUT, PYTHON, DEVICE (default cuda; bf16 autocast only there) and
# TRAIN_ARGS (appended to pconv.train's arguments, so they override) let the tests run it on a CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}
gpu=${GPU_DIR:-.gpu}
python=${PYTHON:-python3}
case "$mode" in
pack)
    photos=${2:-../shared/datasets/photos/train}
    init=${3:-}
    mkdir -p "$gpu/photos"
    "${PYTHON:-.venv/bin/python}" - "$photos" "$gpu/photos" <<'PY'
import sys
from pathlib import Path
from PIL import Image
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
for p in sorted(src.glob("*.jpg")):
    with Image.open(p) as im:
        im = im.convert("RGB")
        scale = 256 / min(im.size)
        if scale < 1:
            im = im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)
        im.save(dst / p.name, quality=60)
PY
    tar -C "$gpu" -cf "$gpu/photos.tar" photos && rm -r "$gpu/photos"
    [ -n "$init" ] && cp "$init" "$gpu/init.safetensors"
    du -sh "$gpu"
    ;;
run)
    minutes=${2:-9}
    out=${OUT:-$gpu/out}
    device=${DEVICE:-cuda}
    photos=$(mktemp -d)
    trap 'rm -rf "$photos"' EXIT
    mkdir -p "$out/run"
    tar -C "$photos" -xf "$gpu/photos.tar"
    extra=()
    [ -f "$gpu/init.safetensors" ] && extra+=(--init "$gpu/init.safetensors")
    if [ "$device" = cuda ]; then
        nvidia-smi --query-gpu=name,memory.total --format=csv
        extra+=(--amp)
    fi
    # shellcheck disable=SC2206  # TRAIN_ARGS is split into words on purpose
    extra+=(${TRAIN_ARGS:-})
    "$python" -m pconv.train --data "$photos/photos" --out "$out/run" --device "$device" \
        --batch 32 --workers 12 --width 0.5 --steps 200000 --w-gradient 2 \
        --max-minutes "$minutes" --checkpoint-minutes 3 --log-every 100 "${extra[@]}"
    rm -f "$out/run/checkpoint.pt" "$out/run/checkpoint.pt.tmp"  # too big to come back; the model does
    ;;
*) echo "usage: $0 pack [PHOTOS_DIR] [MODEL] | run [MINUTES]" >&2; exit 2 ;;
esac
