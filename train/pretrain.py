"""Pre-train MPM (masked 2D + masked 3D pose modeling).

    accelerate launch train/pretrain.py --config pretrain_h36m17 [--set key=value ...]

A thin wrapper for a source checkout: the installed equivalents are ``mpm train pretrain ...`` and
``accelerate launch -m modeling_mpm.cli.train pretrain ...``. See ``--help`` and docs/training.md.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from modeling_mpm.cli.train import pretrain_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(pretrain_main())
