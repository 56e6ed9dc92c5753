#!/usr/bin/env bash
# Reruns every benchmark behind bench/RESULTS.md, then rebuilds the report.
#   bash bench/run_all.sh            # the report's budget ("small"), several hours on 2 busy CPU cores
#   BUDGET=smoke bash bench/run_all.sh   # seconds per script (writes bench/results/*_smoke.json)
# Accuracy seeds are independent processes; on a machine with more cores run them in parallel.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BUDGET:-small}
export HF_HUB_OFFLINE=1
if [ "$B" = small ]; then
  # sections 1-4: every model trained by the package trainer. The recorded run ran these 21 commands at
  # once (one process each) on a lent 16-core H200 machine in about 3 minutes; one after the other on
  # 2 CPU cores they take a few hours.
  python bench/bench_accuracy.py --budget small --seeds 0
  for s in 1 2 3 4; do
    python bench/bench_accuracy.py --budget small --seeds $s --out bench/results/accuracy_small_seed$s.json
  done
  python bench/bench_completion.py --budget small       # reuses accuracy seed 0's pre-trained checkpoint
  A="--budget small --pretrain-steps 300 --finetune-steps 200"
  python bench/bench_ablation.py $A --variants paper_0.6_5_both
  for v in tmr0.3_smj5 tmr0.8_smj5 tmr0.6_smj2 tmr0.6_smj9 pretext_2d_only pretext_3d_only shared_batch_mask none \
           dropped_frames_as_mask_token; do
    python bench/bench_ablation.py $A --variants $v --tag _$v
  done
  for v in paper_0.6_5_both none dropped_frames_as_mask_token pretext_2d_only pretext_3d_only; do
    python bench/bench_ablation.py $A --seeds 1 --variants $v --tag _seed1_$v
  done
  python bench/bench_training_precision.py --skip-speed --threads 1 --accuracy-steps 300 \
      --json bench/results/training_precision_accuracy.json
  # speed: on a quiet machine
  python bench/bench_training_speed.py --budget small --threads 2
  python bench/bench_inference_scaling.py --budget small --threads 2
  python bench/bench_inference.py --threads 2 --memory-frames 0 --json bench/results/inference_headline.json
  # section 7 (ran with --jobs 16 on a lent 16-core GPU machine; --jobs 1 on 2 cores takes hours)
  python bench/bench_transfer.py --budget small --jobs "${JOBS:-1}" --recipes wide_lift,wide,baseline
  python bench/bench_transfer.py --budget small --jobs "${JOBS:-1}" --recipes motion_lift_lr5e4,motion_lr5e4,baseline_lr5e4 \
      --out bench/results/transfer_small_run2.json
  # section 8: the streaming part trains its lifter once (bench/results/checkpoints/stream_lifter_small_seed0)
  python bench/bench_streaming.py --budget small --part streaming --threads 1 --max-frames 240
  python bench/bench_streaming.py --budget small --part speed --threads 1
  python bench/bench_streaming.py --budget small --part video --threads 2
  # section 11 (real capture; needs mediapipe and the pose2sim wheel, fetched with pip download; the demo's lifters)
  if [ -d "${DEMO_DIR:-demo_out}/mpm-lift" ]; then
    python bench/bench_real_capture.py --model demo="${DEMO_DIR:-demo_out}/mpm-lift" \
        --model demo_scratch="${DEMO_DIR:-demo_out}/mpm-lift-scratch"
    # section 13 (held-out motion capture, fetched from the package registries; the general lifter is always scored)
    python bench/bench_heldout_mocap.py --model demo-pretrained="${DEMO_DIR:-demo_out}/mpm-lift" \
        --model demo-scratch="${DEMO_DIR:-demo_out}/mpm-lift-scratch"
  fi
  # section 12: compute-matched pre-training arms, 3 seeds, clean fold 0 (about 50 min on 2 cores)
  python bench/bench_pretraining.py --budget full --pretrain-steps 500 --finetune-steps 175 --device cpu \
      --jobs "${JOBS:-1}" --seeds 0 1 2 --folds 0
  # the same section: a second split, then both splits' lifters scored on climb_seq_4 (outside the repository)
  python bench/bench_pretraining.py --budget full --pretrain-steps 500 --finetune-steps 175 --device cpu \
      --jobs "${JOBS:-1}" --seeds 0 1 2 --folds 0 1 --arms scratch_total,mm_lift --no-premise --heldout
else
  for s in accuracy completion ablation; do python bench/bench_$s.py --budget "$B"; done
  python bench/bench_training_speed.py --budget "$B"
  python bench/bench_inference_scaling.py --budget "$B"
  python bench/bench_transfer.py --budget "$B"
fi
python bench/make_report.py --budget "$B"
