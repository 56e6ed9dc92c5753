"""Export a trained model: a ``save_pretrained`` folder with the pipeline code, a model card with a
``model-index`` from the measured results, ``eval_results.json`` and ``training_config.yaml``;
optionally pushed to the Hub."""

from __future__ import annotations

import json
import logging
import os
from typing import Any, Dict, Optional

from ..model_card import is_hub_id, write_model_card
from ..atomic import atomic_write_dir

__all__ = ["save_model_with_pipeline", "export_model", "dataset_description"]

logger = logging.getLogger("modeling_mpm.training")


def save_model_with_pipeline(model, folder: str, pipeline_code: bool = True) -> None:
    """Save ``model`` for ``pipeline(...)``: the ``save_pretrained`` files plus, with ``pipeline_code``,
    the pipeline code and a ``custom_pipelines`` entry (``pose-lifting`` / ``pose-completion``), so that
    ``pipeline(task, model=folder, trust_remote_code=True)`` works without the package installed."""
    if not pipeline_code:
        model.save_pretrained(folder)
        return
    from transformers import pipeline

    from .. import pipeline_mpm  # noqa: F401  (registers the pipeline tasks)

    task = "pose-lifting" if type(model).__name__ == "MPMForPoseLifting" else "pose-completion"
    pipeline(task, model=model, device="cpu").save_pretrained(folder)


#: model-index dataset ids of the well-known sources (folder names as written by ``mpm prepare``)
_KNOWN_DATASETS = (("3dhp", "mpi-inf-3dhp"), ("h36m", "human3.6m"), ("human3.6m", "human3.6m"),
                   ("amass", "amass"), ("bvh", "bvh-motion-capture"))


def dataset_description(cfg) -> Dict[str, Any]:
    """``dataset_name`` / ``dataset_type`` (Hub id, else the source's well-known name) / ``dataset_split``
    / ``datasets`` (Hub ids only, never local paths) for the card."""
    d = cfg.data
    if d.source == "demo":
        return {"dataset_name": "MPM demo motion (CMU mocap + climbing capture, virtual cameras)",
                "dataset_type": "mpm-demo", "dataset_split": "validation", "datasets": []}
    if d.source == "synthetic":
        return {"dataset_name": "synthetic animated skeletons", "dataset_type": "synthetic",
                "dataset_split": d.test_split or "test", "datasets": []}
    paths = [str(p) for p in (d.paths or [])]
    hub_ids = [p for p in paths if is_hub_id(p)]
    names = [p if p in hub_ids else os.path.basename(os.path.normpath(p)) for p in paths]
    known = []
    for n in names:
        kind = next((slug for key, slug in _KNOWN_DATASETS if key in n.lower()), None)
        known.append(n if n in hub_ids else (kind or "custom"))
    return {"dataset_name": "+".join(names) or "prepared", "dataset_type": "+".join(dict.fromkeys(known)) or "custom",
            "dataset_split": d.test_split or "test", "datasets": hub_ids}


def _training_details(cfg, best_step, global_step) -> str:
    t, m = cfg.training, cfg.model
    lines = [
        f"- task `{t.task}`, {global_step} optimizer steps, global batch {t.batch_size}, "
        f"Adam (amsgrad={t.amsgrad}) lr {t.lr:g}, decay x{t.lr_decay:g} per "
        f"{t.lr_decay_steps or 'epoch'} steps ({t.lr_schedule}), seed {t.seed}",
        f"- data: `{cfg.data.source}`" + (f" {cfg.data.paths}" if cfg.data.paths else "") +
        f", tds {cfg.data.tds}, flip augmentation {cfg.data.flip_augment}",
    ]
    if t.task == "lift" and t.occlusion_prob > 0:
        limbs = f", a whole limb in {t.occlusion_limb_prob:.0%} of them" if t.occlusion_limb_prob > 0 else ""
        lines.append(f"- occlusion augmentation: p={t.occlusion_prob:g}, up to {t.occlusion_max_joints} joints{limbs}")
    if best_step is not None:
        lines.append(f"- weights of step {best_step} (best validation `{t.best_metric or 'default'}`)")
    if m:
        lines.append(f"- model overrides: `{dict(m)}`")
    return "\n".join(lines)


def export_model(model, folder: str, *, cfg, eval_results: Optional[Dict[str, Any]] = None,
                 best_step: Optional[int] = None, global_step: int = 0, push_to_hub: Optional[str] = None,
                 model_name: Optional[str] = None, extra_details: str = "") -> str:
    """Write the exported model folder atomically (and push it when ``push_to_hub`` is set)."""
    eval_results = eval_results or {}
    desc = dataset_description(cfg)

    def write(tmp):
        save_model_with_pipeline(model, tmp, pipeline_code=bool(getattr(cfg.hub, "pipeline_code", True)))
        write_model_card(tmp, model, task=cfg.training.task, eval_results=eval_results,
                         base_model=cfg.training.init_from, model_name=model_name or f"mpm-{cfg.training.task}",
                         training_details=_training_details(cfg, best_step, global_step) + extra_details,
                         **desc)
        with open(os.path.join(tmp, "eval_results.json"), "w", encoding="utf-8") as f:
            json.dump(eval_results, f, indent=2)
        with open(os.path.join(tmp, "training_config.yaml"), "w", encoding="utf-8") as f:
            f.write(cfg.to_yaml())

    atomic_write_dir(folder, write)
    if push_to_hub:
        from huggingface_hub import HfApi

        api = HfApi()
        api.create_repo(push_to_hub, private=bool(cfg.hub.private), exist_ok=True)
        api.upload_folder(repo_id=push_to_hub, folder_path=folder, commit_message="Upload MPM model")
        logger.info("pushed %s to https://huggingface.co/%s", folder, push_to_hub)
    return folder
