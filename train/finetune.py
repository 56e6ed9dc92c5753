"""Fine-tune MPM for a downstream task: 2D->3D lifting, 3D completion, occluded 2D->3D, or the
post-refine stage of a fine-tuned lifter (windows with camera intrinsics and root depth).

    accelerate launch train/finetune.py --task lift --config finetune_lift_h36m17 \
        --init_from runs/pretrain_h36m17/model
    accelerate launch train/finetune.py --task refine --config configs/finetune_lift_h36m17.yaml \
        --init_from runs/finetune_lift_h36m17/model --lr 1e-4 --output_dir runs/refine_h36m17

A thin wrapper for a source checkout: the installed equivalents are ``mpm train finetune ...`` and
``accelerate launch -m modeling_mpm.cli.train finetune ...``. See ``--help`` and docs/training.md.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from modeling_mpm.cli.train import finetune_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(finetune_main())
