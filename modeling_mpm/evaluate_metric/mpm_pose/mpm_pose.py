"""``evaluate`` metric module for 3D human pose: MPJPE, P-MPJPE, N-MPJPE, MPJVE and the
MPI-INF-3DHP PCK / AUC, all reported in millimetres (PCK / AUC in %).

Load it offline from this folder (``evaluate.load(path_to_this_folder)``) or, with the package
installed, ``modeling_mpm.metrics.load_pose_metric()``. The arithmetic is the package's own
(:mod:`modeling_mpm.metrics`), so this module needs ``modeling_mpm`` installed; it holds no second
implementation.
"""

import datasets
import evaluate
import numpy as np

from modeling_mpm import metrics as M

_CITATION = """\
@article{zhang2023mpm,
  title   = {MPM: A Unified 2D-3D Human Pose Representation via Masked Pose Modeling},
  author  = {Zhang, Zhenyu and Chai, Wenhao and Jiang, Zhongyu and Ye, Tian and Song, Mingli and
             Hwang, Jenq-Neng and Wang, Gaoang},
  journal = {arXiv preprint arXiv:2306.17201},
  year    = {2023}
}
"""

_DESCRIPTION = """\
Errors of 3D human poses against ground truth: MPJPE (protocol 1), P-MPJPE (protocol 2, after a
per-pose similarity Procrustes alignment), N-MPJPE (after a per-pose least-squares scale), MPJVE
(velocity error between consecutive poses of the same sequence) and, for skeletons with the
MPI-INF-3DHP 14-joint set, PCK@150mm and AUC (0:5:150 mm).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: poses, each ``(joints, 3)``, root-relative, in ``unit``.
    references: ground-truth poses of the same shape and unit.
    unit: ``"m"`` (default), ``"cm"`` or ``"mm"``; results are in mm.
    actions: optional label per pose; adds ``per_action`` and makes ``mpjpe`` / ``p_mpjpe`` /
        ``n_mpjpe`` the mean over actions (the Human3.6M protocol); ``*_frames`` weigh every pose.
    sequence_ids: optional sequence label per pose; with it consecutive poses of the same
        sequence give ``mpjve`` (mm per frame step).
    skeleton: skeleton name (``"h36m17"``, ``"h36m16"``, ``"mpi3dhp17"``) for ``pck`` / ``auc``
        on the official 3DHP joints; omitted: no PCK/AUC.
Returns:
    ``mpjpe``, ``p_mpjpe``, ``n_mpjpe``, ``mpjpe_frames``, ``p_mpjpe_frames``, ``n_mpjpe_frames``,
    ``poses`` and, when available, ``mpjve``, ``pck``, ``auc``, ``per_action``.
Examples:
    >>> metric = evaluate.load("modeling_mpm/evaluate_metric/mpm_pose")
    >>> metric.compute(predictions=[[[0, 0, 0], [0.1, 0, 0]]], references=[[[0, 0, 0], [0.1, 0.01, 0]]])["mpjpe"]
    5.0
"""

_UNIT_TO_MM = {"m": 1000.0, "cm": 10.0, "mm": 1.0}


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MpmPose(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({
                "predictions": datasets.Array2D(shape=(None, 3), dtype="float64"),
                "references": datasets.Array2D(shape=(None, 3), dtype="float64"),
            }),
            reference_urls=["https://arxiv.org/abs/2306.17201"],
        )

    def _compute(self, predictions, references, unit="m", actions=None, sequence_ids=None, skeleton=None):
        if unit not in _UNIT_TO_MM:
            raise ValueError(f"unit must be one of {sorted(_UNIT_TO_MM)}, got {unit!r}")
        pred = np.asarray(predictions, dtype=np.float64)
        ref = np.asarray(references, dtype=np.float64)
        if pred.ndim != 3 or pred.shape != ref.shape or pred.shape[-1] != 3:
            raise ValueError(f"predictions and references must be poses (joints, 3) of one shape, "
                             f"got {pred.shape} and {ref.shape}")
        scale = _UNIT_TO_MM[unit]
        per_pose = {
            "mpjpe": M.mpjpe_per_frame(pred, ref) * scale,
            "p_mpjpe": M.p_mpjpe_per_frame(pred, ref) * scale,
            "n_mpjpe": M.n_mpjpe_per_frame(pred, ref) * scale,
        }
        out = {f"{k}_frames": float(v.mean()) for k, v in per_pose.items()}
        out["poses"] = int(len(pred))
        if actions is not None:
            if len(actions) != len(pred):
                raise ValueError(f"{len(pred)} poses but {len(actions)} action labels")
            meters = {k: M.ActionErrorMeter() for k in per_pose}
            for k, meter in meters.items():
                meter.update(per_pose[k], [str(a) for a in actions])
            out.update({k: meter.mean_over_actions() for k, meter in meters.items()})
            counts = meters["mpjpe"].counts()
            per_action = {k: meter.per_action() for k, meter in meters.items()}
            out["per_action"] = {a: {**{k: per_action[k][a] for k in per_pose}, "poses": counts[a]} for a in counts}
        else:
            out.update({k: out[f"{k}_frames"] for k in per_pose})
        if sequence_ids is not None:
            if len(sequence_ids) != len(pred):
                raise ValueError(f"{len(pred)} poses but {len(sequence_ids)} sequence ids")
            ids = np.asarray([str(s) for s in sequence_ids])
            same = ids[1:] == ids[:-1]
            if same.any():
                velocity_errors = M.joint_errors(np.diff(pred, axis=0)[same], np.diff(ref, axis=0)[same])
                out["mpjve"] = float(velocity_errors.mean() * scale)
        if skeleton is not None:
            out["pck"] = M.pck_3dhp(pred, ref, unit=unit, skeleton=skeleton)
            out["auc"] = M.auc_3dhp(pred, ref, unit=unit, skeleton=skeleton)
        return out
