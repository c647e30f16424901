#!/usr/bin/env bash
# Copyright (c) mmsamrefiner contributors. All rights reserved.
#
# tools/refine.py end to end on one COCO collection, two checkouts of this
# project side by side: runs alternate (A, B, A, B, ...), each in its own
# process with that checkout first on PYTHONPATH and a fresh output, and the
# wall time of each whole command (process start, imports and the model
# included) is printed, then the median of each and the masks of the two last
# outputs compared (mean IoU, share identical).
#
#   bash tools/benchmark_refine_checkouts.sh A_ROOT B_ROOT COLLECTION RUNS [extra refine.py args]
#
# COLLECTION: a folder written by tools/make_synthetic_collection.py (its
# coarse/images and coarse/instances.json are refined); A_ROOT, e.g. a
# `git archive <commit>` unpacked, B_ROOT this working tree.  The config is
# the toy SAM's; PYTHON (default .venv/bin/python of this tree) runs both.
set -euo pipefail
A=$1 B=$2 COLL=$3 RUNS=$4
shift 4
HERE=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-$HERE/.venv/bin/python}
OUT=$(mktemp -d)
declare -A TIMES
for run in $(seq 1 "$RUNS"); do
  for side in A B; do
    root=${!side}
    rm -rf "$OUT/$side"
    start=$(date +%s.%N)
    (cd "$root" && PYTHONPATH="$root" "$PYTHON" tools/refine.py \
      configs/samrefiner/samrefiner_sam_toy.py --img-dir "$COLL/coarse/images" \
      --coco "$COLL/coarse/instances.json" --out "$OUT/$side/refined.json" --device cpu "$@" \
      > "$OUT/$side.log" 2>&1)
    took=$(echo "$(date +%s.%N) - $start" | bc)
    TIMES[$side]="${TIMES[$side]:-} $took"
    echo "run $run $side ($root): $took s"
  done
done
"$PYTHON" - "$OUT" "${TIMES[A]}" "${TIMES[B]}" <<'PY'
import json, statistics, sys
import numpy as np
from pycocotools import mask as mask_utils
out, times_a, times_b = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
a, b = (statistics.median(map(float, t)) for t in (times_a, times_b))
print(f'median A {a:.1f} s, B {b:.1f} s: B takes {b / a:.2f} of A\'s time')
anns = [{x['id']: x for x in json.load(open(f'{out}/{side}/refined.json'))['annotations']}
        for side in 'AB']
ious, same = [], 0
for ann_id, x in anns[0].items():
    ma, mb = (mask_utils.decode(side[ann_id]['segmentation']).astype(bool) for side in (anns[0], anns[1]))
    union = (ma | mb).sum()
    ious.append((ma & mb).sum() / union if union else 1.0)
    same += bool((ma == mb).all())
print(f'masks {len(ious)}: mean IoU {np.mean(ious):.4f}, min {np.min(ious):.4f}, '
      f'identical {same}/{len(ious)}')
PY
rm -rf "$OUT"
