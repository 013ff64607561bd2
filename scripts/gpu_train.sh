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
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}
case "$mode" in
pack)
    photos=${2:-../shared/datasets/photos/train}
    init=${3:-}
    mkdir -p .gpu/photos
    "${PYTHON:-.venv/bin/python}" - "$photos" <<'PY'
import sys
from pathlib import Path
from PIL import Image
src, dst = Path(sys.argv[1]), Path(".gpu/photos")
for p in sorted(src.glob("*.jpg")):
    with Image.open(p) as im:
        im = im.convert("RGB")
        scale = 256 / min(im.size)
        if scale < 1:
            im = im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)
        im.save(dst / p.name, quality=60)
PY
    tar -C .gpu -cf .gpu/photos.tar photos && rm -r .gpu/photos
    [ -n "$init" ] && cp "$init" .gpu/init.safetensors
    du -sh .gpu
    ;;
run)
    minutes=${2:-9}
    out=${OUT:-.gpu/out}
    mkdir -p "$out/run" /tmp/photos
    tar -C /tmp -xf .gpu/photos.tar
    init=()
    [ -f .gpu/init.safetensors ] && init=(--init .gpu/init.safetensors)
    nvidia-smi --query-gpu=name,memory.total --format=csv
    python3 -m pconv.train --data /tmp/photos --out "$out/run" --device cuda --amp \
        --batch 32 --workers 12 --width 0.5 --steps 200000 --w-gradient 2 \
        --max-minutes "$minutes" --checkpoint-minutes 3 --log-every 100 "${init[@]}"
    rm -f "$out/run/checkpoint.pt" "$out/run/checkpoint.pt.tmp"  # too big to come back; the model does
    ;;
*) echo "usage: $0 pack [PHOTOS_DIR] [MODEL] | run [MINUTES]" >&2; exit 2 ;;
esac
