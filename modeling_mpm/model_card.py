"""Model cards for trained MPM models: the package's ``model_card_template.md`` rendered with
``huggingface_hub.ModelCardData`` metadata and a ``model-index`` from measured results. No network needed
(``card.validate()`` would, so it is not called).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, List, Mapping, Optional

__all__ = ["TEMPLATE_PATH", "TASK_DESCRIPTIONS", "eval_results_from", "results_markdown", "build_model_card",
           "write_model_card", "is_hub_id"]

#: The card template, shipped inside the package (package data, so wheels have it too).
TEMPLATE_PATH = Path(__file__).resolve().parent / "model_card_template.md"

#: Metadata of every card. No Hub pipeline tag describes 2D -> 3D pose: "other" keeps the Hub from inferring one.
PIPELINE_TAG = "other"
TAGS = ["mpm", "pose-estimation", "3d-human-pose-estimation", "human-pose-lifting", "masked-pose-modeling",
        "custom_code"]
#: model-index task type: a Hub task id (https://huggingface.co/tasks has none for 3D pose lifting).
MODEL_INDEX_TASK = "other"
#: The pipeline task that serves each training task.
PIPELINE_TASKS = {"lift": "pose-lifting", "occluded2d": "pose-completion", "complete3d": "pose-completion",
                  "pretrain": "pose-completion"}


def is_hub_id(name) -> bool:
    """True for ``org/name`` Hub repository ids (no ``@revision``); False for local paths (existing
    or not: absolute, ``./``, ``~``, more than one ``/``, backslashes)."""
    from .training.hub import is_repo_id

    return is_repo_id(name) and "@" not in name and ".." not in name and not name.startswith("~")


TASK_DESCRIPTIONS = {
    "pretrain": "masked 2D and masked 3D pose modeling (pre-training)",
    "lift": "monocular 2D -> 3D human pose lifting",
    "complete3d": "3D pose completion (3D with missing body parts -> 3D)",
    "occluded2d": "3D human pose estimation from occluded 2D keypoints",
}

_FALLBACK_TEMPLATE = """---
{{ card_data }}
---

# {{ model_name }}

{{ model_summary }}

Task: {{ task_description }}. Architecture `{{ architecture }}`, skeleton `{{ skeleton }}`,
{{ num_frames }} frames, {{ num_parameters }} parameters; initialisation: {{ initialisation }}.

```python
import modeling_mpm
from transformers import pipeline

{{ usage }}
```

## Training

{{ training_details }}

## Evaluation

{{ evaluation_details }}

{{ results_table }}

## Limitations

{{ limitations }}
"""

_SETTING_NAMES = {
    "plain": "no test-time augmentation",
    "flip": "flip test-time augmentation",
    "occluded": "occluded joints in the 2D input",
    "masked_modeling": "fixed random spatio-temporal masks",
    "completion": "body-part tube masks",
}


def eval_results_from(results: Mapping[str, Mapping[str, Any]], *, task: str, dataset_type: str,
                      dataset_name: str, dataset_split: Optional[str] = None) -> List:
    """``EvalResult`` entries for a card's ``model-index`` from ``{setting: evaluation dict}`` (the trainer's test
    evaluation: ``plain`` / ``flip`` / ``occluded`` lifting, ``completion``, ``masked_modeling``; errors in mm)."""
    from huggingface_hub import EvalResult

    task_type = MODEL_INDEX_TASK
    names = {"mpjpe": "MPJPE (mm)", "p_mpjpe": "P-MPJPE (mm)", "mpjpe_masked": "MPJPE masked joints (mm)",
             "mpjpe_all": "MPJPE all joints, diluted (mm)", "mpjpe_3d": "3D reconstruction MPJPE (mm)",
             "error_2d": "2D reconstruction error (x1000 normalised units)", "pck": "PCK@150mm (%)",
             "auc": "AUC (%)", "mpjpe_3dhp": "MPJPE, 3DHP protocol: 14 joints (mm)"}
    out = []
    for setting, res in results.items():
        for key, label in names.items():
            value = res.get(key) if isinstance(res, Mapping) else None
            if value is None or isinstance(value, (dict, list)):
                continue
            suffix = _SETTING_NAMES.get(setting, setting)
            metric_type = key if setting in ("plain", "completion", "masked_modeling") else f"{key}_{setting}"
            out.append(EvalResult(task_type=task_type, task_name=TASK_DESCRIPTIONS.get(task, task),
                                  dataset_type=dataset_type, dataset_name=dataset_name, dataset_split=dataset_split,
                                  metric_type=metric_type, metric_name=f"{label}, {suffix}",
                                  metric_value=round(float(value), 2)))
    return out


def results_markdown(results: Mapping[str, Mapping[str, Any]]) -> str:
    """Markdown tables of the measured results (overall rows, then per action for lifting)."""
    if not results:
        return "_No evaluation was run._"
    lines = []
    lifting = {k: v for k, v in results.items() if isinstance(v, Mapping) and "p_mpjpe" in v}
    if lifting:
        lines += ["| setting | MPJPE (mm) | P-MPJPE (mm) | windows |", "|---|---:|---:|---:|"]
        for k, v in lifting.items():
            row = f"| {_SETTING_NAMES.get(k, k)} | {v['mpjpe']:.1f} | {v['p_mpjpe']:.1f} | {v.get('windows', '')} |"
            lines.append(row)
        first = next(iter(lifting.values()))
        if first.get("per_action"):
            lines += ["", "Per action (" + _SETTING_NAMES.get(next(iter(lifting)), "") + "):", "",
                      "| action | MPJPE (mm) | P-MPJPE (mm) | windows |", "|---|---:|---:|---:|"]
            for a, r in first["per_action"].items():
                lines.append(f"| {a} | {r['mpjpe']:.1f} | {r['p_mpjpe']:.1f} | {r.get('windows', '')} |")
    for k, v in results.items():
        if k in lifting or not isinstance(v, Mapping):
            continue
        scalars = {m: x for m, x in v.items() if isinstance(x, (int, float)) and not isinstance(x, bool)}
        lines += ["", f"**{k}**", "", "| metric | value |", "|---|---:|"]
        lines += [f"| {m} | {x:.2f} |" for m, x in scalars.items()]
        if isinstance(v.get("per_manner"), Mapping):
            lines += ["", "Per tube manner:", ""]
            for d, r in v["per_manner"].items():
                lines.append(f"- manner {d}: " + ", ".join(f"{m} {x:.1f}" for m, x in r.items()))
    return "\n".join(lines).strip()


def _usage(task: str) -> str:
    if task == "lift":
        return ('pipe = pipeline("pose-lifting", model="PATH_OR_REPO")\n'
                'out = pipe(keypoints_2d, image_size=(1920, 1080), keypoint_format="h36m")  # (frames, 17, 2) pixels\n'
                'out["pose_3d"]  # (frames, 17, 3) metres')
    return ('pipe = pipeline("pose-completion", model="PATH_OR_REPO")\n'
            'out = pipe(pose_3d_with_nans)  # (frames, 17, 3); NaN = missing joint')


def build_model_card(model, *, task: str, eval_results: Optional[Mapping[str, Any]] = None,
                     dataset_name: str = "unknown", dataset_type: str = "custom",
                     dataset_split: Optional[str] = None, base_model: Optional[str] = None,
                     initialisation: Optional[str] = None, training_details: str = "",
                     evaluation_details: str = "", model_name: Optional[str] = None,
                     limitations: Optional[str] = None, template_path: Optional[str] = None,
                     datasets: Optional[List[str]] = None, license: str = "apache-2.0"):
    """A :class:`huggingface_hub.ModelCard` for ``model`` (an MPM model or its config).

    ``eval_results`` feeds the ``model-index`` and the results table. ``base_model`` and ``datasets`` enter the
    metadata only as Hub ids (``org/name``); ``dataset_type`` is the model-index dataset id; ``license`` is the
    weights' licence (weights trained on licensed data may need ``"other"``).
    """
    from huggingface_hub import ModelCard, ModelCardData

    if task not in TASK_DESCRIPTIONS:
        raise ValueError(f"task must be one of {sorted(TASK_DESCRIPTIONS)}, got {task!r}")
    cfg = getattr(model, "config", model)
    skel = cfg.get_skeleton()
    n_params = sum(p.numel() for p in model.parameters()) if hasattr(model, "parameters") else None
    eval_results = dict(eval_results or {})
    name = model_name or f"mpm-{task}"
    results = eval_results_from(eval_results, task=task, dataset_type=dataset_type, dataset_name=dataset_name,
                                dataset_split=dataset_split) if eval_results else None
    hub_base = base_model if is_hub_id(base_model) else None
    hub_datasets = [d for d in (datasets or []) if is_hub_id(d)] or None
    data = ModelCardData(library_name="transformers", pipeline_tag=PIPELINE_TAG, license=license, tags=list(TAGS),
                         datasets=hub_datasets, model_name=name if results else None, eval_results=results,
                         base_model=hub_base)
    arch = (getattr(cfg, "architectures", None) or [type(model).__name__])[0]
    if not initialisation and base_model:
        base = base_model if hub_base else os.path.basename(os.path.normpath(base_model))
        initialisation = "pre-trained encoder: " + base
    split = f", split `{dataset_split}`." if dataset_split else "."
    kwargs = dict(
        model_name=name, model_summary=f"An MPM model for {TASK_DESCRIPTIONS[task]}.",
        task_description=TASK_DESCRIPTIONS[task], architecture=arch, skeleton=skel.name, num_joints=cfg.num_joints,
        num_frames=cfg.num_frames, hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_layers=cfg.num_layers, num_heads=cfg.num_attention_heads,
        num_parameters=f"{n_params / 1e6:.2f} M" if n_params else "n/a",
        initialisation=initialisation or "random",
        usage=_usage(task), pipeline_task=PIPELINE_TASKS.get(task, "pose-lifting"),
        training_details=training_details or "_Not recorded._",
        evaluation_details=evaluation_details or f"Data: {dataset_name}{split}",
        results_table=results_markdown(eval_results),
        limitations=limitations or (
            "Trained on the data named above only; accuracy on other camera set-ups, frame rates, "
            "skeleton definitions or detectors can be much worse. Single person, root-relative output "
            "(no global trajectory). Not for safety-critical or surveillance use."),
    )
    path = template_path or (str(TEMPLATE_PATH) if TEMPLATE_PATH.is_file() else None)
    if path is not None:
        return ModelCard.from_template(data, template_path=path, **kwargs)
    return ModelCard.from_template(data, template_str=_FALLBACK_TEMPLATE, **kwargs)


def write_model_card(folder: str, model, **kwargs) -> str:
    """Render :func:`build_model_card` into ``folder/README.md``; returns the path."""
    card = build_model_card(model, **kwargs)
    path = os.path.join(folder, "README.md")
    card.save(path)
    return path
