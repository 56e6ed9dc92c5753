"""Offline stand-ins for the Hub models, used by the tests and the speed benchmark (test fixtures,
not part of the package).

:func:`build_tiny_pose_models` saves a tiny randomly initialised RT-DETR (person detector) and
ViTPose (COCO-17 keypoints) with their image processors to folders, in about a second; they load
exactly like ``PekingU/rtdetr_r50vd_coco_o365`` and ``usyd-community/vitpose-base-simple`` but
their outputs are random. :func:`write_synthetic_video` writes a short clip (PyAV).
"""

from __future__ import annotations

import os
from typing import Tuple

import numpy as np

__all__ = ["build_tiny_pose_models", "build_full_size_pose_models", "synthetic_person_boxes", "write_synthetic_video"]


def build_tiny_pose_models(folder: str, seed: int = 0) -> Tuple[str, str]:
    """Save a tiny random RT-DETR and ViTPose under ``folder``; returns ``(detector_dir, pose_dir)``."""
    import torch
    from transformers import (
        RTDetrConfig, RTDetrForObjectDetection, RTDetrResNetConfig, VitPoseBackboneConfig, VitPoseConfig,
        VitPoseForPoseEstimation,
    )
    from transformers.models.rt_detr.image_processing_pil_rt_detr import RTDetrImageProcessorPil
    from transformers.models.vitpose.image_processing_pil_vitpose import VitPoseImageProcessorPil

    torch.manual_seed(seed)
    det_dir, pose_dir = os.path.join(folder, "tiny-rtdetr"), os.path.join(folder, "tiny-vitpose")
    backbone = RTDetrResNetConfig(embedding_size=8, hidden_sizes=[8, 16, 16, 16], depths=[1, 1, 1, 1],
                                  out_features=["stage2", "stage3", "stage4"], out_indices=[2, 3, 4])
    det_cfg = RTDetrConfig(
        backbone_config=backbone, encoder_hidden_dim=16, encoder_in_channels=[16, 16, 16], encoder_ffn_dim=32,
        encoder_attention_heads=2, d_model=16, num_queries=20, decoder_in_channels=[16, 16, 16],
        decoder_ffn_dim=32, decoder_layers=1, decoder_attention_heads=2, decoder_n_points=2, num_denoising=0,
        id2label={0: "person", 1: "car"}, label2id={"person": 0, "car": 1},
    )
    RTDetrForObjectDetection(det_cfg).eval().save_pretrained(det_dir)
    RTDetrImageProcessorPil(size={"height": 64, "width": 64}).save_pretrained(det_dir)
    vit = VitPoseBackboneConfig(image_size=[64, 48], patch_size=[16, 16], hidden_size=16, num_hidden_layers=1,
                                num_attention_heads=2, mlp_ratio=2, out_indices=[1], out_features=["stage1"],
                                stage_names=["stem", "stage1"])
    VitPoseForPoseEstimation(VitPoseConfig(backbone_config=vit, num_labels=17)).eval().save_pretrained(pose_dir)
    VitPoseImageProcessorPil(size={"height": 64, "width": 48}).save_pretrained(pose_dir)
    return det_dir, pose_dir


def build_full_size_pose_models(folder: str, seed: int = 0) -> Tuple[str, str]:
    """Randomly initialised models with the architectures (and image processor settings) of
    ``PekingU/rtdetr_r50vd_coco_o365`` (RT-DETR ResNet-50-vd, 640x640 input, the transformers
    defaults) and ``usyd-community/vitpose-base-simple`` (ViT-B, 256x192 input): same compute as the
    Hub weights, for offline speed measurements. Returns ``(detector_dir, pose_dir)``."""
    import torch
    from transformers import RTDetrConfig, RTDetrForObjectDetection, VitPoseConfig, VitPoseForPoseEstimation
    from transformers.models.rt_detr.image_processing_pil_rt_detr import RTDetrImageProcessorPil
    from transformers.models.vitpose.image_processing_pil_vitpose import VitPoseImageProcessorPil

    torch.manual_seed(seed)
    det_dir, pose_dir = os.path.join(folder, "rtdetr-r50vd-random"), os.path.join(folder, "vitpose-base-random")
    labels = {0: "person", **{i: f"class_{i}" for i in range(1, 80)}}
    det_cfg = RTDetrConfig(id2label=labels, label2id={v: k for k, v in labels.items()})
    RTDetrForObjectDetection(det_cfg).eval().save_pretrained(det_dir)
    RTDetrImageProcessorPil(size={"height": 640, "width": 640}).save_pretrained(det_dir)
    VitPoseForPoseEstimation(VitPoseConfig(num_labels=17)).eval().save_pretrained(pose_dir)
    VitPoseImageProcessorPil(size={"height": 256, "width": 192}).save_pretrained(pose_dir)
    return det_dir, pose_dir


def synthetic_person_boxes(t: int, width: int, height: int, people: int = 2) -> np.ndarray:
    """``(people, 4)`` boxes (x0, y0, x1, y1 pixels) of the figures in frame ``t`` of
    :func:`write_synthetic_video`."""
    boxes = []
    for p in range(people):
        cx = int((0.25 + 0.5 * p / max(people - 1, 1)) * width + 2 * t * (1 if p % 2 == 0 else -1))
        cx = int(np.clip(cx, width // 10, width - width // 10))
        h, top = height // 2, height // 4
        w = max(h // 4, 4)
        boxes.append([cx - w // 2, top, cx - w // 2 + w, top + h])
    return np.asarray(boxes, dtype=np.float64)


def write_synthetic_video(path: str, frames: int = 12, width: int = 128, height: int = 96, fps: int = 10,
                          people: int = 2) -> str:
    """A clip of ``people`` bright figures (head, torso, legs) walking over a dark gradient
    (H.264/MPEG-4 via PyAV)."""
    import av

    yy, xx = np.mgrid[0:height, 0:width]
    background = np.stack([xx * 60 // width, yy * 60 // height, np.full_like(xx, 30)], -1).astype(np.uint8)
    with av.open(path, "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for t in range(frames):
            img = background.copy()
            for p, (x0, top, x1, bottom) in enumerate(synthetic_person_boxes(t, width, height, people).astype(int)):
                cx, h, w = (x0 + x1) // 2, bottom - top, x1 - x0
                col = np.array([230, 200, 170 - 60 * p], dtype=np.uint8)
                img[top:top + h // 5, cx - w // 3:cx + w // 3] = col                      # head
                img[top + h // 5:top + 3 * h // 5, cx - w // 2:cx + w // 2] = col          # torso
                img[top + 3 * h // 5:top + h, cx - w // 2:cx - w // 6] = col               # legs
                img[top + 3 * h // 5:top + h, cx + w // 6:cx + w // 2] = col
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
