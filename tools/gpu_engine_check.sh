#!/usr/bin/env bash
# GPU engine check of the training loop (needs one CUDA GPU; DeepSpeed installed for the ZeRO runs):
# one GPU plain (bf16), FSDP v1 and v2, DeepSpeed ZeRO-2 and ZeRO-3, each a 4-step tiny
# pre-training on synthetic data through `accelerate launch -m modeling_mpm.cli.train`;
# the FSDP v1/v2 and ZeRO-2/3 runs are also resumed from their step-2 checkpoint and the exported
# weights compared. Usage (repository root):  OUT=gpu-check bash tools/gpu_engine_check.sh
# Optional: wheels in .whl/ (e.g. deepspeed and its needs) are installed to /tmp/site first
# (SKIP_WHEELS=1: the caller installed them already).
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
if [ -z "$SKIP_WHEELS" ] && ls .whl/*.whl > /dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    > "$OUT/pip.txt" 2>&1 || echo "pip failed" >> "$OUT/summary.txt"
fi
export PYTHONPATH=$PWD:/tmp/site HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 OMP_NUM_THREADS=4
S="$OUT/summary.txt"
LOG="$OUT/log.txt"
{ nvidia-smi -L; python3 -c "import torch, accelerate, transformers; print(torch.__version__, accelerate.__version__, transformers.__version__, torch.cuda.is_available())"; python3 -c "import deepspeed; print('deepspeed', deepspeed.__version__)"; } >> "$S" 2>&1
TINY=(--config tiny_pretrain --set data.source=synthetic --set data.synthetic_sequences=8 --set data.synthetic_length=60
      --max_steps 4 --checkpoint_every 2 --set training.select_best=false --set training.tensorboard=false --no_progress)
PORT=29600
wanted() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }  # ONLY="fsdp2 fsdp2_resume": just those
run() {  # name, accelerate launch args..., -- extra training args
  local name=$1; shift
  wanted "$name" || return 0
  local la=(); while [ "$1" != "--" ]; do la+=("$1"); shift; done; shift
  PORT=$((PORT+1))
  echo "===== $name" >> "$LOG"
  local t0=$(date +%s)
  timeout 150 accelerate launch --num_processes 1 --num_machines 1 --dynamo_backend no --main_process_port $PORT "${la[@]}" \
     -m modeling_mpm.cli.train pretrain "${TINY[@]}" "$@" > "$OUT/run_$name.log" 2>&1
  local rc=$?
  cat "$OUT/run_$name.log" >> "$LOG"
  if [ $rc -ne 0 ]; then grep -v "^\s*$" "$OUT/run_$name.log" | tail -12 | cut -c1-400 >> "$S"; fi
  echo "$name rc=$rc $(( $(date +%s) - t0 ))s $(grep -o 'task pretrain.*' "$LOG" | tail -1 | sed 's/.*| //')" >> "$S"
}
cmp() {  # two exported model folders
  python3 - "$1" "$2" >> "$S" 2>&1 <<'EOF'
import sys, torch
from safetensors.torch import load_file
a, b = (load_file(p + "/model/model.safetensors") for p in sys.argv[1:3])
d = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
moved = any(not torch.equal(a[k], b[k]) for k in a)
print(f"compare {sys.argv[1]} vs {sys.argv[2]}: same keys {a.keys() == b.keys()}, max abs diff {d:.3g}, bitwise equal {not moved}")
EOF
}
run plain_bf16 --mixed_precision bf16 -- --output_dir /tmp/r/plain
run fsdp1 --use_fsdp --fsdp_version 1 --fsdp_sharding_strategy FULL_SHARD --fsdp_auto_wrap_policy NO_WRAP --mixed_precision no -- --output_dir /tmp/r/fsdp1
wanted fsdp1 && ls /tmp/r/fsdp1/checkpoints/step_00000002 >> "$S" 2>&1
run fsdp1_resume --use_fsdp --fsdp_version 1 --fsdp_sharding_strategy FULL_SHARD --fsdp_auto_wrap_policy NO_WRAP --mixed_precision no -- --output_dir /tmp/r/fsdp1b --resume /tmp/r/fsdp1/checkpoints/step_00000002
wanted fsdp1_resume && cmp /tmp/r/fsdp1 /tmp/r/fsdp1b
run fsdp2 --use_fsdp --fsdp_version 2 --fsdp_reshard_after_forward true --fsdp_auto_wrap_policy NO_WRAP --mixed_precision no -- --output_dir /tmp/r/fsdp2
wanted fsdp2 && ls /tmp/r/fsdp2/checkpoints/step_00000002 >> "$S" 2>&1
run fsdp2_resume --use_fsdp --fsdp_version 2 --fsdp_reshard_after_forward true --fsdp_auto_wrap_policy NO_WRAP --mixed_precision no -- --output_dir /tmp/r/fsdp2b --resume /tmp/r/fsdp2/checkpoints/step_00000002
wanted fsdp2_resume && cmp /tmp/r/fsdp2 /tmp/r/fsdp2b
run zero2 --use_deepspeed --zero_stage 2 --gradient_accumulation_steps 1 --mixed_precision no -- --output_dir /tmp/r/zero2
wanted zero2 && ls /tmp/r/zero2/checkpoints/step_00000002 >> "$S" 2>&1
run zero2_resume --use_deepspeed --zero_stage 2 --gradient_accumulation_steps 1 --mixed_precision no -- --output_dir /tmp/r/zero2b --resume /tmp/r/zero2/checkpoints/step_00000002
wanted zero2_resume && cmp /tmp/r/zero2 /tmp/r/zero2b
run zero3 --use_deepspeed --zero_stage 3 --zero3_save_16bit_model true --gradient_accumulation_steps 1 --mixed_precision no -- --output_dir /tmp/r/zero3
wanted zero3 && ls /tmp/r/zero3/checkpoints/step_00000002 >> "$S" 2>&1
run zero3_resume --use_deepspeed --zero_stage 3 --zero3_save_16bit_model true --gradient_accumulation_steps 1 --mixed_precision no -- --output_dir /tmp/r/zero3b --resume /tmp/r/zero3/checkpoints/step_00000002
wanted zero3_resume && cmp /tmp/r/zero3 /tmp/r/zero3b
grep -n "Error\|error:" "$LOG" | head -40 >> "$S"
cat "$S"
