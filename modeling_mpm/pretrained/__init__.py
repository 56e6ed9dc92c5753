"""Lifters that ship inside the package (no download).

``GENERAL_LIFTER``: the folder of ``mpm-lift-general``, an :class:`~modeling_mpm.MPMForPoseLifting`
(27 frames, H36M-17, ~0.8M parameters) trained by ``train/general_lifter.py`` on every embedded
motion sequence seen through the ``"real"`` augmentation (cameras, lenses and frame shapes of real
footage, motion beyond the embedded sequences, a detector's 2D errors). It is the default lifter of
``lift_video`` / ``mpm lift-video``; its model card (``README.md`` in the folder) has what was
measured on real footage::

    from transformers import AutoModel
    from modeling_mpm.pretrained import GENERAL_LIFTER
    lifter = AutoModel.from_pretrained(GENERAL_LIFTER)
"""

import os

__all__ = ["GENERAL_LIFTER"]

#: folder of the shipped general lifter (a ``save_pretrained`` / Hub-layout folder)
GENERAL_LIFTER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mpm-lift-general")
