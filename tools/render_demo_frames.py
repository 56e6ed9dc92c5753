"""Render a few frames of the embedded demo data to PNG (front and side views, world Z up)
for a visual check: ``python tools/render_demo_frames.py --output /tmp/demo_frames``."""

from __future__ import annotations

import argparse
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from modeling_mpm.data import load_demo_dataset, load_sequences  # noqa: E402
from modeling_mpm.skeleton import H36M_17  # noqa: E402

LEFT = set(H36M_17.joints_left)


def draw(ax, pose, axes, title):
    for parent, child in H36M_17.bones:
        color = "tab:red" if child in LEFT else ("tab:blue" if child in H36M_17.joints_right else "k")
        ax.plot(pose[[parent, child], axes[0]], pose[[parent, child], axes[1]], color=color, lw=2)
    ax.scatter(pose[:, axes[0]], pose[:, axes[1]], s=8, c="k")
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=8)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--output", default="demo_frames")
    p.add_argument("--frames", type=int, default=3)
    a = p.parse_args(argv)
    os.makedirs(a.output, exist_ok=True)
    dd = load_demo_dataset()
    for split in dd:
        for seq in load_sequences(dd[split]):
            pose = seq["pose_3d"]
            frames = np.linspace(0, len(pose) - 1, a.frames).astype(int)
            fig, axs = plt.subplots(2, a.frames, figsize=(3 * a.frames, 6))
            for k, t in enumerate(frames):
                root = pose[t, 0]
                rel = pose[t] - root * np.array([1, 1, 0])
                draw(axs[0, k], rel, (0, 2), f"{seq['sequence']} t={t} X-Z")
                draw(axs[1, k], rel, (1, 2), f"Y-Z (red = left)")
            fig.tight_layout()
            out = os.path.join(a.output, f"{split}_{seq['sequence']}.png")
            fig.savefig(out, dpi=70)
            plt.close(fig)
            print(out)


if __name__ == "__main__":
    main()
