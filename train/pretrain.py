"""Pre-train MPM (masked 2D + masked 3D pose modeling).

    accelerate launch train/pretrain.py --config configs/pretrain_h36m17.yaml [--set key=value ...]

See ``python train/pretrain.py --help`` and docs/training.md.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from modeling_mpm.training.cli import pretrain_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(pretrain_main())
