"""Run configuration for pre-training and fine-tuning: a YAML file with the sections ``model``
(MPMConfig keyword arguments plus ``preset``), ``data``, ``training``, ``eval`` and ``hub`` (every key
optional, defaults in :data:`SCHEMA`), plus command-line overrides.

``--config`` takes a file path or the name of a shipped config (:func:`shipped_configs`). Overrides:
``--set training.lr=3e-4`` (repeatable; the value is parsed as YAML) or the scripts' shortcut flags.
Unknown sections or keys and values of the wrong type raise ``ValueError`` / ``TypeError`` naming the key.
"""

from __future__ import annotations

import copy
import inspect
import os
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

import yaml

__all__ = ["RunConfig", "load_config", "SCHEMA", "TASKS", "parse_override", "CONFIG_DIR", "shipped_configs",
           "resolve_config_path"]

TASKS = ("pretrain", "lift", "complete3d", "occluded2d", "refine")

_ANY = object()

# section -> key -> (type(s), default, choices or None). A type tuple containing type(None)
# means "optional". float keys accept ints.
SCHEMA: Dict[str, Dict[str, Tuple[Any, Any, Optional[Tuple[Any, ...]]]]] = {
    "data": {
        "source": (str, "demo", ("demo", "prepared", "synthetic")),
        "paths": (list, [], None),                      # prepared dataset folders (save_to_disk)
        "train_split": (str, "train", None),
        "val_split": ((str, type(None)), "validation", None),
        "test_split": ((str, type(None)), "test", None),
        "tds": (int, 1, None),                          # temporal downsampling of the 2D window
        "train_stride": (int, 1, None),                 # window-centre stride in training
        "eval_stride": (int, 1, None),                  # window-centre stride in val / test
        "flip_augment": (bool, True, None),             # random left/right flips in training
        "augment": ((str, dict, type(None)), None, None),  # training-window augmentation (data/augment.py)
        "train_sequences": ((list, type(None)), None, None),  # only these training sequences (by name)
        "max_val_windows": ((int, type(None)), 4096, None),
        "max_test_windows": ((int, type(None)), None, None),
        "synthetic_sequences": (int, 8, None),          # source=synthetic: sequences per split
        "synthetic_length": (int, 120, None),           # source=synthetic: frames per sequence
    },
    "training": {
        "task": (str, "pretrain", TASKS),
        "output_dir": (str, "runs/mpm", None),
        "init_from": ((str, type(None)), None, None),   # save_pretrained folder to start from
        "epochs": (int, 50, None),
        "epoch_multiplier": (int, 1, None),             # passes over the windows per epoch (authors: 4 pretrain, 2 ft)
        "max_steps": ((int, type(None)), None, None),   # optimizer steps; overrides epochs
        "batch_size": (int, 1024, None),                # global windows per optimizer step
        "lr": (float, 1e-4, None),
        "lr_decay": (float, 0.97, None),                # multiplied in every decay period
        "lr_decay_steps": ((int, type(None)), None, None),  # decay period; None = one epoch
        "lr_schedule": (str, "staircase", ("staircase", "smooth")),
        "warmup_steps": (int, 0, None),
        "encoder_lr_scale": (float, 1.0, None),         # init_from runs: the transferred encoder's LR = lr x this
        "freeze_encoder_steps": (int, 0, None),         # init_from runs: encoder fixed for this many steps (LP-FT)
        "rescale_encoder_stream": (bool, False, None),  # init_from runs: residual stream to a fresh encoder's scale
        "weight_decay": (float, 0.0, None),
        "amsgrad": (bool, True, None),
        "max_grad_norm": ((float, type(None)), None, None),
        "gradient_accumulation_steps": (int, 1, None),
        "mixed_precision": (str, "no", ("no", "bf16", "fp16")),
        "seed": (int, 1, None),
        "checkpoint_every": ((int, type(None)), 1000, None),  # optimizer steps
        "keep_checkpoints": (int, 2, None),
        "eval_every": ((int, type(None)), None, None),  # optimizer steps; None = every epoch
        "log_every": (int, 50, None),
        "num_workers": (int, 0, None),
        "pretrain_pairing": (str, "split", ("split", "paired")),
        "pretrain_lift": (bool, False, None),           # + masked 2D -> 3D lifting (paper v1 pretext task)
        # what the lifting pretext lifts: the 2D pass's masked input (v1 / authors' PoseAug branch), the
        # visible clip (no mask) or the clip with the lifting task's missing joints (occlusion_prob/_max_joints)
        "pretrain_lift_input": (str, "masked", ("masked", "visible", "occluded")),
        "occlusion_prob": (float, 0.0, None),           # lift: chance a window gets missing joints
        "occlusion_max_joints": (int, 3, None),         # lift: up to this many missing joints/frame
        "occlusion_limb_prob": (float, 0.0, None),      # lift: chance an occluded window hides a whole limb instead
        "best_metric": ((str, type(None)), None, None),  # None: the task's default
        "select_best": (bool, True, None),              # export the best validation weights
        "tensorboard": (bool, True, None),
        "log_with": (list, [], None),                   # Accelerate trackers: wandb, mlflow, trackio, ... or all
        "tracker_project": (str, "mpm", None),          # project / run name given to the trackers
        "gradient_checkpointing": (bool, False, None),  # recompute activations (less memory, ~30% slower)
        "progress_bar": ((bool, type(None)), None, None),  # None: only on a terminal
    },
    "eval": {
        "flip": (bool, True, None),                     # test-time flip augmentation
        "batch_size": (int, 256, None),
        "occluded_joints": (int, 0, None),              # >0: extra run with k random joints hidden per frame
        "occlusion_seed": (int, 0, None),
        "mode": (str, "center", ("center", "all_frames")),
    },
    "hub": {
        "push_to_hub": ((str, type(None)), None, None),
        "private": (bool, False, None),
        "pipeline_code": (bool, True, None),            # also save the pipeline code (remote use)
    },
}

MODEL_PRESETS = ("h36m_17", "h36m_16", "completion_27")


def _type_name(t) -> str:
    if isinstance(t, tuple):
        return " or ".join("None" if x is type(None) else x.__name__ for x in t)
    return t.__name__


def _check_value(section: str, key: str, value: Any) -> Any:
    types, _, choices = SCHEMA[section][key]
    tt = types if isinstance(types, tuple) else (types,)
    ok = False
    for t in tt:
        if t is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = float(value)
            ok = True
            break
        if t is int and isinstance(value, bool):
            continue
        if isinstance(value, t):
            ok = True
            break
    if not ok:
        raise TypeError(f"config key {section}.{key} must be {_type_name(types)}, got "
                        f"{type(value).__name__} ({value!r})")
    if choices is not None and value not in choices:
        raise ValueError(f"config key {section}.{key} must be one of {list(choices)}, got {value!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if key in ("epochs", "epoch_multiplier", "batch_size", "gradient_accumulation_steps", "log_every", "tds",
                   "train_stride", "eval_stride", "keep_checkpoints", "synthetic_sequences", "synthetic_length",
                   "lr", "encoder_lr_scale") and value <= 0:
            raise ValueError(f"config key {section}.{key} must be > 0, got {value}")
        if key in ("max_steps", "checkpoint_every", "eval_every", "lr_decay_steps", "max_val_windows",
                   "max_test_windows") and value <= 0:
            raise ValueError(f"config key {section}.{key} must be > 0 (or null), got {value}")
        if key in ("lr_decay",) and not 0 < value <= 1:
            raise ValueError(f"config key {section}.{key} must be in (0, 1], got {value}")
        if key in ("occlusion_prob", "occlusion_limb_prob") and not 0 <= value <= 1:
            raise ValueError(f"config key {section}.{key} must be in [0, 1], got {value}")
        if key in ("warmup_steps", "freeze_encoder_steps", "num_workers", "occluded_joints", "weight_decay",
                   "occlusion_max_joints") and value < 0:
            raise ValueError(f"config key {section}.{key} must be >= 0, got {value}")
    if key == "train_sequences" and value is not None and not all(isinstance(p, str) for p in value):
        raise TypeError(f"config key data.train_sequences must be a list of sequence names, got {value!r}")
    if key == "paths" and not all(isinstance(p, str) for p in value):
        raise TypeError(f"config key data.paths must be a list of strings, got {value!r}")
    if key == "log_with" and not all(isinstance(p, str) for p in value):
        raise TypeError(f"config key training.log_with must be a list of tracker names, got {value!r}")
    return value


def _model_keys() -> Optional[set]:
    try:
        from ..configuration_mpm import MPMConfig
    except ImportError:  # pragma: no cover - the model package is part of the project
        return None
    params = inspect.signature(MPMConfig.__init__).parameters
    return {k for k, p in params.items() if k != "self" and p.kind is not p.VAR_KEYWORD}


class Section(dict):
    """A config section: a dict with attribute access."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class RunConfig:
    """Validated run configuration. Sections: ``model`` (dict), ``data``, ``training``, ``eval``,
    ``hub`` (attribute access, e.g. ``cfg.training.lr``)."""

    def __init__(self, raw: Optional[Mapping[str, Any]] = None):
        raw = copy.deepcopy(dict(raw or {}))
        if not isinstance(raw, dict):
            raise TypeError(f"a config must be a mapping, got {type(raw).__name__}")
        unknown = set(raw) - set(SCHEMA) - {"model"}
        if unknown:
            raise ValueError(f"unknown config section(s) {sorted(unknown)}; valid: {['model'] + list(SCHEMA)}")
        for section, spec in SCHEMA.items():
            given = raw.get(section) or {}
            if not isinstance(given, dict):
                raise TypeError(f"config section {section!r} must be a mapping, got {type(given).__name__}")
            bad = set(given) - set(spec)
            if bad:
                raise ValueError(f"unknown config key(s) {sorted(f'{section}.{k}' for k in bad)}; "
                                 f"valid keys of {section!r}: {sorted(spec)}")
            values = {k: copy.deepcopy(d) for k, (_, d, _) in spec.items()}
            for k, v in given.items():
                values[k] = _check_value(section, k, v)
            setattr(self, section, Section(values))
        model = raw.get("model") or {}
        if not isinstance(model, dict):
            raise TypeError(f"config section 'model' must be a mapping, got {type(model).__name__}")
        keys = _model_keys()
        if keys is not None:
            bad = set(model) - keys - {"preset"}
            if bad:
                raise ValueError(f"unknown model key(s) {sorted('model.' + k for k in bad)}; valid: "
                                 f"{sorted(keys | {'preset'})}")
        preset = model.get("preset")
        if preset is not None and preset not in MODEL_PRESETS:
            raise ValueError(f"model.preset must be one of {list(MODEL_PRESETS)} or null, got {preset!r}")
        self.model = Section(model)
        if self.data.source == "prepared" and not self.data.paths:
            raise ValueError("data.source is 'prepared' but data.paths is empty: give the folders "
                             "written by `mpm prepare` (e.g. --set data.paths=[data/h36m])")

    def to_dict(self) -> Dict[str, Any]:
        return copy.deepcopy({"model": dict(self.model), **{sec: dict(getattr(self, sec)) for sec in SCHEMA}})

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def with_overrides(self, overrides: Iterable[str]) -> "RunConfig":
        raw = self.to_dict()
        for item in overrides:
            key, value = parse_override(item)
            section, _, name = key.partition(".")
            if not name or "." in name:
                raise ValueError(f"override key must be 'section.key', got {key!r}")
            if section not in raw:
                raise ValueError(f"unknown config section {section!r} in override {item!r}; valid: "
                                 f"{['model'] + list(SCHEMA)}")
            raw[section][name] = value
        return RunConfig(raw)

    def build_model_config(self):
        """The :class:`~modeling_mpm.MPMConfig` described by the ``model`` section."""
        from ..configuration_mpm import MPMConfig

        kwargs = dict(self.model)
        preset = kwargs.pop("preset", None)
        if preset is None:
            return MPMConfig(**kwargs)
        return getattr(MPMConfig, preset)(**kwargs)

    def __repr__(self) -> str:
        return f"RunConfig({self.to_dict()!r})"


def parse_override(item: str) -> Tuple[str, Any]:
    """``"training.lr=3e-4"`` -> ``("training.lr", 0.0003)`` (the value parsed as YAML)."""
    if not isinstance(item, str) or "=" not in item:
        raise ValueError(f"override must look like 'section.key=value', got {item!r}")
    key, raw = item.split("=", 1)
    key = key.strip()
    try:
        value = yaml.safe_load(raw) if raw.strip() != "" else None
    except yaml.YAMLError as err:
        raise ValueError(f"cannot parse the value of override {item!r}: {err}") from None
    # YAML reads 3e-4 as a string (no dot); accept the usual float spellings
    if isinstance(value, str):
        try:
            value = float(value) if any(c in value for c in "eE.") and value.strip() not in ("e", "E") else value
        except ValueError:
            pass
    return key, value


#: the run configs shipped with the package (package data)
CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


def shipped_configs() -> Dict[str, str]:
    """``{name: path}`` of the configs in :data:`CONFIG_DIR` (name = file name without ``.yaml``)."""
    if not os.path.isdir(CONFIG_DIR):
        return {}
    return {f[:-5]: os.path.join(CONFIG_DIR, f) for f in sorted(os.listdir(CONFIG_DIR)) if f.endswith(".yaml")}


def resolve_config_path(spec: str) -> str:
    """A config file for ``spec``: an existing file, else a shipped config by name
    (``pretrain_h36m17``, ``pretrain_h36m17.yaml`` or the old checkout path
    ``configs/pretrain_h36m17.yaml``). Raises ``ValueError`` listing the shipped names."""
    if os.path.isfile(spec):
        return spec
    name = os.path.basename(spec)
    name = name[:-5] if name.endswith(".yaml") else name[:-4] if name.endswith(".yml") else name
    shipped = shipped_configs()
    parent = os.path.basename(os.path.dirname(os.path.normpath(spec)))
    if name in shipped and (os.sep not in spec and "/" not in spec or parent == "configs"):
        return shipped[name]
    raise ValueError(f"config file {spec!r} does not exist and is not a shipped config; shipped: "
                     f"{', '.join(shipped) or 'none'}")


def load_config(path: Optional[str] = None, overrides: Iterable[str] = ()) -> RunConfig:
    """Read a YAML run config (a path or a shipped config name; the defaults when ``path`` is
    None) and apply overrides."""
    raw: Dict[str, Any] = {}
    if path is not None:
        path = resolve_config_path(path)
        with open(path, "r", encoding="utf-8") as f:
            raw = yaml.safe_load(f) or {}
        if not isinstance(raw, dict):
            raise TypeError(f"config file {path!r} must hold a mapping, got {type(raw).__name__}")
    return RunConfig(raw).with_overrides(overrides)
