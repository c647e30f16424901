#!/usr/bin/env bash
# SAMRefiner++ adapter training on GPUS processes of this node (torchrun); more nodes:
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=host0 bash tools/dist_adapt.sh CONFIG 8 ...
CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29512}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
python -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" --master_port="$PORT" \
    "$(dirname "$0")/adapt.py" "$CONFIG" --launcher pytorch "${@:3}"
