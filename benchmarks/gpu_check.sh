#!/usr/bin/env bash
# GPU check of the training paths that cannot run on this project's CPU machine, as one table of
# images/s on one GPU: the plain reference loop (benchmarks/train_speed.py) and condgan's loop on
# the AC-GAN paper's CIFAR-10 preset (its nets, batch 100; random cifar-10-batches-py data) in fp32,
# bf16, fp16 (GradScaler), bf16 + channels_last, bf16 + torch.compile, a 1-rank NCCL run through
# `--nproc 1` (torch's elastic launcher, DDP objectives), and the FID Inception-v3 feature pass
# (random weights unless CONDGAN_INCEPTION_WEIGHTS names the weights file: timing only).
#
#   bash benchmarks/gpu_check.sh                 # on a CUDA machine, from the repository root
#   DEVICE=cpu SECONDS_PER_ITEM=2 STEPS=20 INCEPTION_N=8 EXTRA_SET=train.batch_size=10 TIMEOUT_SCALE=4 \
#     ITEMS="plain fp32 fp16 nccl inception" bash benchmarks/gpu_check.sh
#                                                # dry run of the CPU-capable items (fp16 is refused on CPU)
#
# Each item runs in its own process under `timeout`; a failing item is reported in the table and
# the others still run. Worst case (every item hitting its timeout and its kill grace): 7.8 minutes.
# Environment: PYTHON (default python), DEVICE (cuda), SECONDS_PER_ITEM (10: timed window after a
# 10-step warm-up), STEPS (200: steps of the --nproc run), INCEPTION_N (2000 images), ITEMS (which items, default all: plain
# fp32 bf16 fp16 channels_last compile nccl inception), EXTRA_SET (one more --set for every training
# item, e.g. a smaller batch for a CPU dry run), TIMEOUT_SCALE (1: multiplies every item's time
# limit), OUT (a temporary folder: rows and logs).
set -u
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
DEVICE=${DEVICE:-cuda}
SECS=${SECONDS_PER_ITEM:-10}
STEPS=${STEPS:-200}
ITEMS=" ${ITEMS:-plain fp32 bf16 fp16 channels_last compile nccl inception} "
OUT=${OUT:-$(mktemp -d -t condgan-gpu-check-XXXXXX)}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"
ROWS="$OUT/rows.jsonl"
: > "$ROWS"
CHECK="benchmarks/gpu_check.py"
DATA="$OUT/data"
start=$(date +%s)

# item KEY NAME TIMEOUT_S ARGS...: run one item (when KEY is in $ITEMS), append its JSON row (or a
# failure row) to $ROWS.
item() {
    local key=$1 name=$2 limit=$3
    shift 3
    [[ "$ITEMS" == *" $key "* ]] || return 0
    limit=$(( limit * ${TIMEOUT_SCALE:-1} ))
    local log="$OUT/${name// /_}.log"
    echo "== $name (at most ${limit}s)" >&2
    if timeout --kill-after=5 "$limit" "$PYTHON" "$CHECK" "$@" --label "$name" --device "$DEVICE" \
            ${EXTRA_SET:+--set "$EXTRA_SET"} > "$log" 2>&1; then
        grep '^{' "$log" | tail -n 1 >> "$ROWS"
    else
        local rc=$?
        local why
        why=$( ( [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] ) && echo "timed out after ${limit}s" \
              || tail -n 1 "$log" | tr -d '"\\' | cut -c1-160)
        printf '{"item": "%s", "failed": "exit %s: %s"}\n' "$name" "$rc" "$why" >> "$ROWS"
    fi
}

"$PYTHON" "$CHECK" data "$DATA" > /dev/null || { echo "cannot write the random CIFAR-10 data under $DATA" >&2; exit 1; }
T="--data-dir $DATA --seconds $SECS"
item plain "plain reference loop (fp32)" 45 plain $T
item fp32 "condgan fp32"                  45 condgan $T --set train.amp=none --set train.channels_last=false
item bf16 "condgan bf16"                  45 condgan $T --set train.amp=bf16 --set train.channels_last=false
item fp16 "condgan fp16 + GradScaler"     45 condgan $T --set train.amp=fp16 --set train.channels_last=false
item channels_last "condgan bf16 channels_last" 45 condgan $T --set train.amp=bf16 --set train.channels_last=true
item compile "condgan bf16 compile"      110 condgan $T --set train.amp=bf16 --set train.compile=true
item nccl "condgan --nproc 1 (NCCL)"      60 ranks --data-dir "$DATA" --nproc 1 --steps "$STEPS" --set train.amp=bf16
item inception "Inception features"       35 inception --n "${INCEPTION_N:-2000}" ${CONDGAN_INCEPTION_WEIGHTS:+--weights "$CONDGAN_INCEPTION_WEIGHTS"}

"$PYTHON" - "$ROWS" "$(( $(date +%s) - start ))" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
plain = next((r.get("images_per_sec") for r in rows if r["item"].startswith("plain")), None)
gpu = next((r["gpu"] for r in rows if "gpu" in r), "no CUDA device")
print(f"\n{gpu}; total {sys.argv[2]} s")
print("| item | images/s | vs plain | peak GPU memory GiB | note |")
print("|---|---|---|---|---|")
for r in rows:
    rate = r.get("images_per_sec")
    ratio = f"{rate / plain:.2f}x" if rate and plain else "—"
    mem = f"{r['max_memory_gib']:.2f}" if "max_memory_gib" in r else "—"
    note = r.get("failed") or (f"weights: {r['weights']}" if "weights" in r else "")
    print(f"| {r['item']} | {f'{rate:.0f}' if rate else '—'} | {ratio if not r['item'].startswith('Inception') else '—'} | {mem} | {note} |")
PY
echo "rows and logs: $OUT" >&2
