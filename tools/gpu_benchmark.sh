#!/usr/bin/env bash
# Copyright (c) mmsamrefiner contributors. All rights reserved.
#
# The GPU rows of docs/speed_gpu.md in one run on one GPU (made for an H100;
# about 9 minutes at most: every step has its own time limit, and a step that
# runs out leaves the others' results).  No network and no SAM checkpoint:
# ViT-B and ViT-H have random weights.
#
#   OUT=/path/to/results bash tools/gpu_benchmark.sh
#
# Steps (tools/benchmark_speed.py; its docstring gives each method):
#   1. ViT-B and ViT-H at 50 coarse-size masks (--fixed-masks), float32 and
#      bfloat16: the stages, overhead / SAM, masks vs float32;
#   2. a generated COCO-like collection (30 images of 480x640, 5-20 masks
#      each) with ViT-H: images/s end to end and ms per stage, float32 vs
#      bfloat16 + SDPA, sequential vs pipelined (the ``workers`` setting of
#      refine_collection; skipped with a printed reason where this checkout
#      lacks it);
#   3. the same collection with a stand-in SAM at ViT-H's frames (no network
#      at all): the host's ceiling, sequential vs pipelined;
#   4. prompt mining's distance transforms, OpenCV on the host vs torch on
#      the GPU (--distance-bench), and upscaling in window-size groups vs one
#      batch (--upscale-bench);
#   5. ViT-H bfloat16 + SDPA with torch.compile vs without (the warm-up run
#      pays the compilation).
# Configurations are JSON dicts of settings (below); add one with another
# --setting NAME JSON, e.g. '{"encode_batch": 4}' or a switch of the prompt
# miner or the upscaling.  Writes $OUT/gpu_benchmark.md (every step's table, its command, its exit
# status and time) and $OUT/<step>.log; the benchmark's own files go to
# $OUT/work.
set -u
: "${OUT:?set OUT to the folder for the results}"
PYTHON=${PYTHON:-python}
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$OUT" "$WORK"
REPORT="$OUT/gpu_benchmark.md"
BENCH=("$PYTHON" tools/benchmark_speed.py --device cuda --out-dir "$WORK")
IMAGES=30
SEQUENTIAL='{"workers": 0}'
PIPELINED='{"workers": 4}'
BF16_SDPA='{"encoder_dtype": "bfloat16", "encoder_attention": "sdpa", "workers": 0}'
BF16_SDPA_PIPELINED='{"encoder_dtype": "bfloat16", "encoder_attention": "sdpa", "workers": 4}'
BF16_SDPA_COMPILE='{"encoder_dtype": "bfloat16", "encoder_attention": "sdpa", "compile_encoder": true, "workers": 0}'

{
  echo "# GPU benchmark ($(date -u '+%Y-%m-%d %H:%M UTC'))"
  echo
  echo '```'
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1
  "$PYTHON" -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))' 2>&1
  echo "cpus: $(nproc)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo '```'
} > "$REPORT"

# step NAME LIMIT_SECONDS MARKDOWN_FILE COMMAND...: run COMMAND under a time
# limit, log it to $OUT/NAME.log, and append MARKDOWN_FILE (what the
# benchmark wrote) to the report.
step() {
  local name=$1 limit=$2 table=$3
  shift 3
  local start=$SECONDS
  echo "== $name (limit ${limit}s)"
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local status=$?
  {
    echo
    echo "## $name"
    echo
    echo '```bash'
    printf '%q ' "$@"
    echo
    echo '```'
    echo
    echo "exit status $status, $((SECONDS - start)) s$([ $status = 124 ] && echo ' (time limit reached)')"
    echo
    if [ -f "$table" ]; then cat "$table"; else echo "(no table: see $name.log)"; tail -n 5 "$OUT/$name.log"; fi
    grep '^skipping' "$OUT/$name.log" || true
  } >> "$REPORT"
  mv "$table" "$OUT/$name.md" 2>/dev/null
  mv "${table%.md}.json" "$OUT/$name.json" 2>/dev/null
}

W="$WORK"
step vit_b_50_masks 60 "$W/speed_sam_vit_b_cuda_fixed.md" \
  "${BENCH[@]}" --arch vit_b --checkpoint none --masks 50 --runs 3 --fixed-masks \
  --encoder-dtype float32 bfloat16 --baselines

step vit_h_50_masks 90 "$W/speed_sam_vit_h_cuda_fixed.md" \
  "${BENCH[@]}" --arch vit_h --checkpoint none --masks 50 --runs 3 --fixed-masks \
  --encoder-dtype float32 bfloat16 --baselines

step vit_h_collection 170 "$W/collection_sam_vit_h_cuda.md" \
  "${BENCH[@]}" --collection "$IMAGES" --arch vit_h --checkpoint none --runs 2 --warmup 1 \
  --setting fp32 "$SEQUENTIAL" --setting bf16-sdpa "$BF16_SDPA" \
  --setting bf16-sdpa-pipelined "$BF16_SDPA_PIPELINED"

step stand_in_vit_h_collection 50 "$W/collection_stand-in_sam_vit_h_cuda.md" \
  "${BENCH[@]}" --collection "$IMAGES" --stand-in --arch vit_h --runs 2 --warmup 1 \
  --setting sequential "$SEQUENTIAL" --setting pipelined "$PIPELINED"

# the two stage benchmarks print their tables: kept as the step's table
step mining_on_device 40 "$WORK/distances.md" \
  bash -c '"$@" > "$0"' "$WORK/distances.md" "${BENCH[@]}" --distance-bench --masks 10 50 --runs 5 \
  --warmup 1

step upscale_groups 20 "$WORK/upscale.md" \
  bash -c '"$@" > "$0"' "$WORK/upscale.md" "${BENCH[@]}" --upscale-bench --runs 7

step vit_h_compile 110 "$W/collection_sam_vit_h_cuda.md" \
  "${BENCH[@]}" --collection "$IMAGES" --arch vit_h --checkpoint none --runs 1 --warmup 1 \
  --setting bf16-sdpa "$BF16_SDPA" --setting bf16-sdpa-compile "$BF16_SDPA_COMPILE"

echo "wrote $REPORT"
