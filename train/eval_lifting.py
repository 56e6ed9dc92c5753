"""Evaluate a lifting model: per-action and overall MPJPE / P-MPJPE, flip augmentation on/off.

    python train/eval_lifting.py --model runs/finetune_lift/model --config configs/finetune_lift_h36m17.yaml --flip both

(Named eval_lifting.py, not evaluate.py: with train/ on sys.path a file evaluate.py would shadow
the evaluate library.)

Same as ``mpm eval``; see ``python train/eval_lifting.py --help``.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from modeling_mpm.cli.eval import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
