"""The training loop for pre-training and the three fine-tuning tasks, on Accelerate.

A plain loop on :class:`accelerate.Accelerator` (any engine, mixed precision, seedable sampler,
``accumulate()``, trackers) with ``save_state`` / ``load_state`` checkpoints (:mod:`.checkpoint`): a
run killed at any moment and resumed with ``resume=True`` finishes with bit-identical weights.

Output folder layout (``training.output_dir``)::

    config.yaml           the resolved run config
    train.log             readable log (main process)
    metrics.csv           step, epoch, split, name, value
    tensorboard/<project>/ TensorBoard events (training.tensorboard / log_with)
    checkpoints/step_N/   resumable checkpoints (the newest training.keep_checkpoints)
    best_model/           save_pretrained folder of the best validation model
    model/                the exported model: save_pretrained + README.md card + eval_results.json
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import re
import signal
import sys
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple, Union

import torch

from .. import evaluation as E
from ..atomic import atomic_write_dir, atomic_write_text
from ..errors import MPMInputError
from .checkpoint import (CheckpointError, capture_rng_state, latest_checkpoint, load_checkpoint,
                         prune_checkpoints, restore_rng_state, write_checkpoint)
from .output_dir import claim_output_dir
from .config import RunConfig
from .data import build_splits, collate_windows, repeat_windows
from .data_sources import dataset_rng_state, restore_dataset_rng_state
from .sampler import BatchPlan, build_train_loader, epoch_loader
from .hub import resolve_model_dir
from .tasks import compute_loss, default_best_metric, flip_batch, model_class
from .transfer import drop_frozen_encoder_grads, optimizer_param_groups, rescale_residual_stream, transfer_active

__all__ = ["train", "TrainResult", "build_model", "build_optimizer", "validate", "check_hub_ready", "KILL_ENV"]

logger = logging.getLogger("modeling_mpm.training")

#: Testing hook: ``MPM_KILL_AFTER_STEP=k`` makes the process SIGKILL itself right after optimizer
#: step ``k`` (and its checkpoint, if one is due), to test crash recovery.
KILL_ENV = "MPM_KILL_AFTER_STEP"

_GEOMETRY_KEYS = ("num_joints", "num_frames", "hidden_size", "embedding_size", "intermediate_size",
                  "num_layers", "num_attention_heads")


@dataclass
class TrainResult:
    """What :func:`train` returns (main process; other ranks get the same step counts)."""

    output_dir: str
    model_dir: Optional[str]
    global_step: int
    best_metric: Optional[float]
    best_step: Optional[int]
    eval_results: Dict[str, Any] = field(default_factory=dict)
    history: List[Dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    model: Any = None  # the final (best or last) model, unwrapped, in eval mode; main process only


def check_hub_ready(repo_id: Optional[str]) -> None:
    """Raise :class:`~modeling_mpm.errors.MPMInputError` before any training when ``--push-to-hub``
    cannot work (offline mode, no network or no token)."""
    if not repo_id:
        return
    if not isinstance(repo_id, str) or repo_id.count("/") > 1 or repo_id.strip() != repo_id:
        raise ValueError(f"--push-to-hub expects a repo id like 'user/mpm-lift', got {repo_id!r}")
    env_offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    try:
        from huggingface_hub import constants

        lib_offline = bool(getattr(constants, "HF_HUB_OFFLINE", False))
    except ImportError:  # pragma: no cover
        lib_offline = False
    if env_offline or lib_offline:
        raise MPMInputError(
            f"--push-to-hub {repo_id}: the Hugging Face Hub is in offline mode (HF_HUB_OFFLINE=1). "
            "Unset HF_HUB_OFFLINE, or train without --push-to-hub and upload the model folder later "
            "with `hf upload`. Nothing was trained.")
    from huggingface_hub import HfApi, get_token

    if get_token() is None:
        raise MPMInputError(f"--push-to-hub {repo_id}: no Hugging Face token found; run `hf auth login` "
                           "or set HF_TOKEN. Nothing was trained.")
    try:
        HfApi().whoami()
    except Exception as err:  # network errors, invalid token
        raise MPMInputError(f"--push-to-hub {repo_id}: cannot reach the Hugging Face Hub ({type(err).__name__}: "
                           f"{err}). Nothing was trained.") from None


def model_config(cfg: RunConfig):
    """``(MPMConfig, init_from folder or None)`` of a run, validated, without building the model (see
    :func:`build_model`). Raises ``ValueError`` / ``TypeError`` naming the bad key."""
    from ..configuration_mpm import MPMConfig

    src = cfg.training.init_from
    if not src:
        mc = cfg.build_model_config()
        if cfg.training.task == "refine":
            mc.use_refine = True
        return mc, None
    src = resolve_model_dir(src, "training.init_from")  # a folder, or a Hub model repo id via the Hub cache
    model_cfg = MPMConfig.from_pretrained(src)
    section = {k: v for k, v in cfg.model.items() if k != "preset"}
    preset = cfg.model.get("preset")
    if preset:  # what the preset sets (e.g. completion_27: 2-layer decoders, tube masks), then the explicit keys
        implied = getattr(MPMConfig, preset).__func__(lambda **kw: kw)  # the keys the preset sets
        section = {**implied, **section}
    for k, v in section.items():
        if k in _GEOMETRY_KEYS and getattr(model_cfg, k) != v:
            origin = "" if k in cfg.model else f" (set by model.preset={preset})"
            raise ValueError(f"model.{k}={v!r}{origin} differs from the checkpoint in {src} "
                             f"({getattr(model_cfg, k)!r}); the encoder cannot be transferred")
        setattr(model_cfg, k, v)  # (a skeleton is resolved by MPMConfig.skeleton's setter)
    if cfg.training.task == "lift" and cfg.training.occlusion_prob > 0:
        model_cfg.mask_token_2d_trained = True  # this run trains the lifter's 2D mask token
    if cfg.training.task == "refine":
        model_cfg.use_refine = True  # the refiner is new; the lifter comes from init_from
    model_cfg.validate_mpm()
    return model_cfg, src


def build_model(cfg: RunConfig):
    """The model of ``training.task``: fresh from the ``model`` section, or loaded from
    ``training.init_from`` (a save_pretrained folder; the ``model`` section then overrides
    non-geometric keys such as dropout, mask or loss settings, and ``model.preset`` applies what
    it sets, e.g. ``completion_27``'s 2-layer decoders and tube masks)."""
    cls = model_class(cfg.training.task)
    model_cfg, src = model_config(cfg)
    if src is None:
        return cls(model_cfg)
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the per-tensor load report is long; summarise it instead
    try:
        model, info = cls.from_pretrained(src, config=model_cfg, output_loading_info=True)
    finally:
        hf_logging.set_verbosity(verbosity)
    # transformers leaves the keys a class declares as expected-new (the lifter's reduce and heads on
    # a pre-training folder) out of missing_keys: count them as new too
    expected_new = getattr(model, "_keys_to_ignore_on_load_missing", None) or []
    new = set(info.get("missing_keys", ())) | {k for k in model.state_dict()
                                               if any(re.search(p, k) for p in expected_new)}
    logger.info("initialised from %s: %d tensors loaded, %d new (%s), %d unused", src,
                len(model.state_dict()) - len(new), len(new), _prefixes(sorted(new)),
                len(info.get("unexpected_keys", ())))
    return model


def _enable_gradient_checkpointing(model) -> None:
    """``training.gradient_checkpointing`` (``gradient_checkpointing_enable`` before transformers 5.x)."""
    enable = getattr(model, "activation_checkpointing_enable", None) or getattr(
        model, "gradient_checkpointing_enable", None)
    if enable is None or not getattr(model, "supports_gradient_checkpointing", False):
        raise ValueError(f"training.gradient_checkpointing: {type(model).__name__} does not support gradient "
                         "checkpointing (no working gradient_checkpointing_enable()); set it to false")
    try:
        enable()
    except (ValueError, NotImplementedError, AttributeError, TypeError) as err:
        raise ValueError(f"training.gradient_checkpointing: {type(model).__name__}.{enable.__name__}() "
                         f"failed ({err}); set it to false") from None


def _prefixes(keys) -> str:
    return ", ".join(sorted({k.split(".")[0] for k in keys})) or "none"


@contextlib.contextmanager
def _rng_guard():
    """Run a block without disturbing any global RNG stream."""
    state = capture_rng_state()
    try:
        yield
    finally:
        restore_rng_state(state)


def _evaluate_task(model, dataset, cfg: RunConfig, progress: bool = False, flip: bool = False,
                   occluded_joints: int = 0) -> Dict[str, Any]:
    """One evaluation of ``training.task`` on ``dataset`` (no RNG guard: the callers hold one);
    ``occluded_joints`` applies to lifting only."""
    task, ev = cfg.training.task, cfg.eval
    bs = ev.batch_size
    if task == "pretrain":
        return E.evaluate_masked_modeling(model, dataset, batch_size=bs, seed=ev.occlusion_seed)
    if task in ("lift", "refine"):
        occlusion = {"occluded_joints": occluded_joints, "seed": ev.occlusion_seed} if occluded_joints > 0 else {}
        return E.evaluate_lifting(model, dataset, batch_size=bs, flip=flip, **occlusion, mode=ev.mode,
                                  progress=progress)
    modality = "3d" if task == "complete3d" else "2d"
    return E.evaluate_completion(model, dataset, modality=modality, batch_size=bs, seed=ev.occlusion_seed, flip=flip)


def validate(model, dataset, cfg: RunConfig, progress: bool = False) -> Dict[str, Any]:
    """Validation metrics of ``training.task`` on ``dataset`` (deterministic; no flip here)."""
    with _rng_guard():
        return _evaluate_task(model, dataset, cfg, progress=progress)


def test_evaluation(model, dataset, cfg: RunConfig, progress: bool = False) -> Dict[str, Any]:
    """Final evaluation on the test split (lifting: plain, and flipped / occluded joints when configured)."""
    task, ev = cfg.training.task, cfg.eval
    out: Dict[str, Any] = {}
    with _rng_guard():
        if task in ("lift", "refine"):
            out["plain"] = _evaluate_task(model, dataset, cfg, progress=progress)
            if ev.flip:
                out["flip"] = _evaluate_task(model, dataset, cfg, progress=progress, flip=True)
            if ev.occluded_joints > 0:
                out["occluded"] = _evaluate_task(model, dataset, cfg, progress=progress, flip=ev.flip,
                                                 occluded_joints=ev.occluded_joints)
        elif task == "pretrain":
            out["masked_modeling"] = _evaluate_task(model, dataset, cfg)
        else:
            out["completion"] = _evaluate_task(model, dataset, cfg, flip=ev.flip)
    return out


class _MetricsWriter:
    """CSV (always) and the Accelerate trackers (``log_with``), main process only."""

    HEADER = ["step", "epoch", "split", "name", "value", "time"]

    def __init__(self, output_dir: str, accelerator=None, keep_through_step: int = 0):
        """Rewrite ``metrics.csv`` atomically keeping the rows of steps ``<= keep_through_step``, then append."""
        import io

        from .output_dir import open_nofollow

        self.path = os.path.join(output_dir, "metrics.csv")
        kept = []
        if keep_through_step > 0 and os.path.isfile(self.path) and not os.path.islink(self.path):
            with open(self.path, "r", newline="", encoding="utf-8", errors="replace") as f:
                for row in csv.reader(f):
                    if len(row) == len(self.HEADER) and row[0].isdigit() and int(row[0]) <= keep_through_step:
                        kept.append(row)
        text = io.StringIO()
        w = csv.writer(text)
        w.writerow(self.HEADER)
        w.writerows(kept)
        atomic_write_text(self.path, text.getvalue())
        self._f = os.fdopen(open_nofollow(self.path, os.O_WRONLY | os.O_APPEND), "a", newline="", encoding="utf-8")
        self._w = csv.writer(self._f)
        self.acc = accelerator if accelerator is not None and accelerator.trackers else None

    def write(self, step: int, epoch: int, split: str, values: Dict[str, Any]) -> None:
        now = time.time()
        scalars = {}
        for k, v in values.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                self._w.writerow([step, epoch, split, k, f"{float(v):.6g}", f"{now:.1f}"])
                scalars[f"{split}/{k}"] = float(v)
        self._f.flush()
        if self.acc is not None and scalars:
            self.acc.log(scalars, step=step)

    def close(self):
        self._f.close()
        if self.acc is not None:  # not end_training(): that also destroys the process group
            for tracker in self.acc.trackers:
                tracker.finish()
            self.acc.trackers = []


#: trackers ``training.log_with`` accepts (Accelerate's names)
TRACKERS = ("tensorboard", "wandb", "mlflow", "trackio", "comet_ml", "aim", "clearml", "dvclive", "swanlab")


def _trackers(cfg: RunConfig) -> List[str]:
    """Accelerate trackers for ``training.log_with`` (+ tensorboard when ``training.tensorboard``
    and it is installed). A tracker asked for by name but not installed is a ``ValueError``."""
    from accelerate.tracking import get_available_trackers

    available = {str(getattr(x, "value", x)) for x in get_available_trackers()}
    wanted = list(cfg.training.log_with)
    if "all" in wanted:
        wanted = [x for x in TRACKERS if x in available]
    for name in wanted:
        if name not in TRACKERS:
            raise ValueError(f"training.log_with: unknown tracker {name!r}; choose from {list(TRACKERS)} or 'all'")
        if name not in available:
            raise ValueError(f"training.log_with: {name!r} is not installed (pip install {name}); "
                             f"installed trackers: {sorted(available) or 'none'}")
    if cfg.training.tensorboard and "tensorboard" not in wanted:
        if "tensorboard" in available:
            wanted.append("tensorboard")
        else:
            logger.warning("TensorBoard logging disabled (tensorboard is not installed); metrics.csv is still written")
    return list(dict.fromkeys(wanted))


def _tracker_config(cfg: RunConfig) -> Dict[str, Any]:
    """The run config flattened to ``section/key`` scalars (what every tracker accepts)."""
    flat = {}
    for section, values in cfg.to_dict().items():
        for k, v in values.items():
            flat[f"{section}/{k}"] = v if isinstance(v, (int, float, str, bool)) else json.dumps(v)
    return flat


def _check_accelerator(acc, cfg: RunConfig) -> None:
    t = cfg.training
    if acc.gradient_accumulation_steps != t.gradient_accumulation_steps:
        raise ValueError(f"the accelerator accumulates {acc.gradient_accumulation_steps} micro-batches but "
                         f"training.gradient_accumulation_steps is {t.gradient_accumulation_steps}; set it in the "
                         "run config (not in `accelerate config` / ACCELERATE_GRADIENT_ACCUMULATION_STEPS)")
    if not acc.split_batches or not acc.dataloader_config.use_seedable_sampler:
        raise ValueError("the accelerator needs DataLoaderConfiguration(split_batches=True, use_seedable_sampler=True)")


def _fit_fsdp2_loading(acc) -> None:
    """FSDP v2: turn off Accelerate's ``cpu_ram_efficient_loading``: its re-broadcast of rank 0's state
    dict fails on the BatchNorm running statistics (persistent buffers; ``'Tensor' object has no
    attribute 'device_mesh'``), and every rank builds the same model from the same seed anyway."""
    plugin = getattr(acc.state, "fsdp_plugin", None)
    if plugin is None or getattr(plugin, "fsdp_version", 1) != 2 or not plugin.cpu_ram_efficient_loading:
        return
    from accelerate.utils import disable_fsdp_ram_efficient_loading

    plugin.cpu_ram_efficient_loading = False
    disable_fsdp_ram_efficient_loading()  # the environment flag transformers' loading reads
    logger.info("FSDP v2: cpu_ram_efficient_loading turned off (every rank builds the model itself; Accelerate "
                "cannot re-broadcast the BatchNorm running statistics, which are persistent buffers)")


def _sharded(acc) -> bool:
    """True when no process holds the whole model (FSDP, DeepSpeed, Megatron)."""
    from accelerate.utils import DistributedType

    return acc.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED, DistributedType.MEGATRON_LM)


class _RankStreams:
    """The loop's per-process random streams, registered with ``register_for_checkpointing``: the
    ``torch.Generator`` for masks and flips and the windows' camera stream after the last consumed
    batch (the loader fetches ahead). ``state_dict`` gathers every rank's. One per accelerator
    (:func:`_streams_of`; Accelerate cannot unregister); each ``train()`` binds its own (:meth:`bind`)."""

    def __init__(self, accelerator):
        self.world_size, self.rank = accelerator.num_processes, accelerator.process_index
        self.generator = self.dataset = self.data_state = None

    def bind(self, generator: Optional[torch.Generator], dataset) -> None:
        self.generator, self.dataset = generator, dataset
        self.data_state = None if dataset is None else dataset_rng_state(dataset)

    def state_dict(self) -> Dict[str, Any]:
        from accelerate.utils import gather_object

        mine = {"generator": self.generator.get_state(), "data": self.data_state}
        return {"world_size": self.world_size, "ranks": gather_object([mine])}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        if int(state["world_size"]) != self.world_size or len(state["ranks"]) != self.world_size:
            raise ValueError(f"the checkpoint holds the random streams of {state['world_size']} process(es), "
                             f"this run has {self.world_size}")
        mine = state["ranks"][self.rank]
        self.generator.set_state(mine["generator"])
        self.data_state = mine["data"]
        restore_dataset_rng_state(self.dataset, self.data_state)


#: the :class:`_RankStreams` registered with each accelerator
_STREAMS: "weakref.WeakKeyDictionary[Any, _RankStreams]" = weakref.WeakKeyDictionary()


def _streams_of(acc) -> _RankStreams:
    """The accelerator's :class:`_RankStreams`, registered for checkpointing on first use."""
    if acc not in _STREAMS:
        _STREAMS[acc] = _RankStreams(acc)
        acc.register_for_checkpointing(_STREAMS[acc])
    return _STREAMS[acc]


class _CollateWithStream:
    """:func:`collate_windows` plus ``"data_stream"``, the data set's random stream after this batch
    (exact with ``num_workers: 0``; a class so that workers can pickle it)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __call__(self, items):
        batch = collate_windows(items)
        batch["data_stream"] = dataset_rng_state(self.dataset)
        return batch


class _EngineView:
    """The model for the evaluation helpers: forward passes through the engine's wrapper (so FSDP /
    DeepSpeed gather their shards), attributes such as ``config`` from the unwrapped model."""

    def __init__(self, wrapped, unwrapped):
        self._wrapped, self._unwrapped = wrapped, unwrapped

    def __call__(self, *args, **kwargs):
        return self._wrapped(*args, **kwargs)

    @property
    def training(self) -> bool:
        return self._wrapped.training

    def eval(self):
        self._wrapped.eval()
        return self

    def train(self, mode: bool = True):
        self._wrapped.train(mode)
        return self

    def __getattr__(self, name):
        return getattr(self._unwrapped, name)


def _full_model(acc, model, unwrapped):
    """A model holding all the weights on the main process (None elsewhere); collective."""
    if not _sharded(acc):
        return unwrapped if acc.is_main_process else None
    state_dict = acc.get_state_dict(model)
    if not acc.is_main_process:
        return None
    full = type(unwrapped)(unwrapped.config)
    full.load_state_dict(state_dict)
    return full


def _setup_logging(output_dir: Optional[str], main: bool) -> Optional[logging.Handler]:
    logger.setLevel(logging.INFO if main else logging.WARNING)
    if not any(getattr(h, "_mpm_console", False) for h in logger.handlers):
        h = logging.StreamHandler(sys.stdout)
        h.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        h._mpm_console = True  # type: ignore[attr-defined]
        logger.addHandler(h)
    logger.propagate = False
    if not main or output_dir is None:
        return None
    fh = logging.FileHandler(os.path.join(output_dir, "train.log"), encoding="utf-8")
    fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(fh)
    return fh


def _lr_lambda(cfg: RunConfig, steps_per_epoch: int):
    t = cfg.training
    period = t.lr_decay_steps or steps_per_epoch
    decay, warm, smooth = t.lr_decay, t.warmup_steps, t.lr_schedule == "smooth"

    def f(step: int) -> float:
        w = min(1.0, (step + 1) / warm) if warm > 0 else 1.0
        e = step / period if smooth else step // period
        return w * decay ** e

    return f


def build_optimizer(model, cfg: RunConfig, steps_per_epoch: int):
    """``(optimizer, scheduler)``: Adam over :func:`~.transfer.optimizer_param_groups` and the
    per-step LR multiplier of :func:`_lr_lambda` (``scheduler.step()`` after every optimizer step)."""
    t = cfg.training
    optimizer = torch.optim.Adam(optimizer_param_groups(model, cfg), lr=t.lr, amsgrad=t.amsgrad,
                                 weight_decay=t.weight_decay)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(cfg, steps_per_epoch))


#: what must match between a run and the checkpoint it resumes (the weights' shapes follow from them)
_RESUME_KEYS = _GEOMETRY_KEYS + ("decoder_layers", "reduce_strides", "use_refine", "skeleton")


def _resume_checkpoint(out_dir: str, resume) -> Optional[str]:
    """The checkpoint folder ``resume`` points at (read only): the given folder, or the newest
    complete one in ``out_dir/checkpoints`` (None when there is none)."""
    if not resume:
        return None
    return resume if isinstance(resume, str) else latest_checkpoint(os.path.join(out_dir, "checkpoints"))


def _check_resume_matches(cfg: RunConfig, mcfg, ckpt: str) -> None:
    """Refuse to resume ``ckpt`` with another task or model geometry than the run that wrote it."""
    from .checkpoint import read_trainer_state

    try:
        old = read_trainer_state(ckpt).get("config")
    except (OSError, ValueError, AttributeError) as err:
        raise CheckpointError(f"checkpoint {ckpt}: unreadable trainer_state.json ({err})") from None
    if not isinstance(old, dict):
        return  # an older checkpoint without its config: loading it checks the shapes
    try:
        old_cfg = RunConfig(old)
    except (ValueError, TypeError):
        return
    if old_cfg.training.task != cfg.training.task:
        raise MPMInputError(f"--resume: checkpoint {ckpt} is a {old_cfg.training.task!r} run, this config trains "
                            f"{cfg.training.task!r}; resume with the run's own config or choose a new --output_dir")
    try:
        old_mcfg, _ = model_config(old_cfg)
    except (ValueError, TypeError, OSError):
        return  # e.g. its init_from folder is gone: loading the checkpoint still checks the shapes
    for k in _RESUME_KEYS:
        a, b = getattr(old_mcfg, k, None), getattr(mcfg, k, None)
        if a != b:
            shown = (lambda v: v.get("name", v) if isinstance(v, dict) else v)
            raise MPMInputError(
                f"--resume: model.{k} is {shown(b)!r} but checkpoint {ckpt} was trained with {shown(a)!r}; resume "
                "with the run's own model settings (its config.yaml) or start a new run in another --output_dir")


def _preflight(cfg: RunConfig, resume, splits) -> None:
    """Every check that can fail on the user's settings, before anything is written: the model
    config (``init_from`` included), the prepared data folders and what ``--resume`` would load."""
    mcfg, _ = model_config(cfg)
    if splits is None and cfg.data.source == "prepared":
        from .hub import is_repo_id

        for path in cfg.data.paths:
            if not os.path.exists(path) and not is_repo_id(path):
                raise MPMInputError(f"data.paths: {path!r} does not exist (prepare it with `mpm prepare`) and is "
                                    "not a Hub dataset repo id like 'org/name'")
    ckpt = _resume_checkpoint(cfg.training.output_dir, resume)
    if ckpt is not None:
        _check_resume_matches(cfg, mcfg, ckpt)


@dataclass
class _Run:
    """The state of one :func:`train` call, from set-up to finish (every rank holds its own)."""

    cfg: RunConfig
    acc: Any
    out_dir: str
    out_lock: Any
    fh: Optional[logging.Handler]
    progress: bool
    kill_after_step: Optional[int]
    writer: Optional[_MetricsWriter] = None
    # set by _build
    model: Any = None
    mcfg: Any = None
    n_params: int = 0
    gen: Optional[torch.Generator] = None
    train_ds: Any = None
    val_ds: Any = None
    test_ds: Any = None
    plan: Optional[BatchPlan] = None
    total_steps: int = 0
    best_key: str = ""
    loader: Any = None
    optimizer: Any = None
    scheduler: Any = None
    streams: Optional[_RankStreams] = None
    # set by _restore
    state: Dict[str, Any] = field(default_factory=dict)
    ckpt_root: str = ""
    last_ckpt_step: int = -1
    bar: Any = None
    eval_every: int = 0
    running: Dict[str, float] = field(default_factory=dict)
    n_running: int = 0
    unwrapped: Any = None
    view: Any = None
    flip_skeleton: Any = None

    @property
    def main(self) -> bool:
        return self.acc.is_main_process

    @property
    def t(self):
        return self.cfg.training


def _fresh_accelerator(cfg: RunConfig, trackers: List[str]):
    """A new Accelerator for the run (engine, processes and, with ``mixed_precision: no``, the precision
    from ``accelerate launch`` / ``accelerate config``), checked to train in the precision the run asks
    for: Accelerate keeps one precision per process, so a run asking for another one than an earlier
    run of the process fails with a ValueError; run it in a new process (``mpm train``)."""
    from accelerate import Accelerator, DataLoaderConfiguration
    from accelerate.utils import ProjectConfiguration

    t = cfg.training
    acc = Accelerator(
        mixed_precision=None if t.mixed_precision == "no" else t.mixed_precision,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        dataloader_config=DataLoaderConfiguration(split_batches=True, use_seedable_sampler=True, data_seed=t.seed),
        log_with=trackers or None,
        project_config=ProjectConfiguration(project_dir=t.output_dir,
                                            logging_dir=os.path.join(t.output_dir, "tensorboard")),
        step_scheduler_with_optimizer=True)
    want = t.mixed_precision
    if want == "no":  # then the precision comes from `accelerate launch` / `accelerate config`
        want = os.environ.get("ACCELERATE_MIXED_PRECISION", "no")
    if str(acc.mixed_precision) != want:
        raise ValueError(f"this process already trains in {acc.mixed_precision} (Accelerate keeps one precision "
                         f"per process) but the run asks for {want}: run it in a new process (`mpm train`)")
    return acc


def _open_run(cfg: RunConfig, acc, *, resume, overwrite: bool, progress: Optional[bool],
              kill_after_step: Optional[int]) -> _Run:
    """Claim (lock) the output folder, write ``config.yaml`` and start the log file."""
    t = cfg.training
    main = acc.is_main_process
    _check_accelerator(acc, cfg)
    out_lock = claim_output_dir(t.output_dir, resume=resume, overwrite=overwrite, accelerator=acc, task=t.task)
    if main:
        atomic_write_text(os.path.join(t.output_dir, "config.yaml"), cfg.to_yaml())
    acc.wait_for_everyone()
    fh = _setup_logging(t.output_dir, main)
    if progress is None:
        progress = t.progress_bar if t.progress_bar is not None else sys.stderr.isatty()
    return _Run(cfg=cfg, acc=acc, out_dir=t.output_dir, out_lock=out_lock, fh=fh, progress=bool(progress) and main,
                kill_after_step=kill_after_step)


def _build(run: _Run, splits) -> None:
    """The model, data, optimizer and random streams, prepared by the accelerator."""
    from accelerate.utils import set_seed

    t, acc, cfg = run.t, run.acc, run.cfg
    _fit_fsdp2_loading(acc)
    if getattr(acc, "log_with", None):
        acc.init_trackers(t.tracker_project, config=_tracker_config(cfg))
    # same initial weights on every rank, then per-rank streams for dropout, masks and flips
    set_seed(t.seed)
    model = build_model(cfg)
    if transfer_active(cfg) and t.rescale_encoder_stream:
        logger.info("transferred encoder's residual stream rescaled by %.3f to a fresh encoder's scale",
                    rescale_residual_stream(model))
    run.mcfg = model.config
    run.n_params = sum(p.numel() for p in model.parameters())
    if t.gradient_checkpointing:
        _enable_gradient_checkpointing(model)
    set_seed(t.seed + 1009 * acc.process_index)
    run.gen = torch.Generator().manual_seed(t.seed * 7_919 + 104_729 * acc.process_index + 1)

    if splits is None:
        train_ds, run.val_ds, run.test_ds = build_splits(cfg, run.mcfg.num_frames, run.mcfg.skeleton)
    else:
        train_ds, run.val_ds, run.test_ds = splits
    run.train_ds = train_ds = repeat_windows(train_ds, t.epoch_multiplier)  # the authors' samples per epoch
    run.plan = BatchPlan(len(train_ds), t.batch_size, t.gradient_accumulation_steps, acc.num_processes)
    steps_per_epoch = run.plan.steps_per_epoch
    run.total_steps = t.max_steps if t.max_steps is not None else t.epochs * steps_per_epoch
    run.best_key = t.best_metric or default_best_metric(t.task)

    loader = build_train_loader(train_ds, run.plan, t.seed, _CollateWithStream(train_ds), t.num_workers)
    optimizer, scheduler = build_optimizer(model, cfg, steps_per_epoch)
    run.model, run.optimizer, run.loader, run.scheduler = acc.prepare(model, optimizer, loader, scheduler)
    run.streams = _streams_of(acc)
    run.streams.bind(run.gen, train_ds)


def _restore(run: _Run, resume) -> None:
    """The loop's counters: fresh, or loaded from the checkpoint ``resume`` points at; then
    ``metrics.csv``, the run summary line and the progress bar."""
    t, acc = run.t, run.acc
    state = run.state = {"global_step": 0, "epoch": 0, "step_in_epoch": 0, "best_metric": None, "best_step": None,
                         "history": []}
    run.ckpt_root = os.path.join(run.out_dir, "checkpoints")
    ckpt = _resume_checkpoint(run.out_dir, resume)
    if resume and ckpt is None:
        logger.info("no checkpoint in %s: starting from scratch", run.ckpt_root)
    elif ckpt is not None:
        loaded = load_checkpoint(ckpt, accelerator=acc)
        state.update({k: loaded[k] for k in state if k in loaded})
        logger.info("resumed from %s (step %d, epoch %d)", ckpt, state["global_step"], state["epoch"])
    # metrics.csv keeps the rows up to the step the run continues from (later ones are written again)
    run.writer = _MetricsWriter(run.out_dir, acc, keep_through_step=state["global_step"]) if run.main else None

    val_ds, test_ds, plan = run.val_ds, run.test_ds, run.plan
    logger.info("task %s | %d train windows, %s val, %s test | %d steps/epoch, %d steps | "
                "batch %d = %d processes x %d accumulation x %d | %.2fM parameters | %s",
                t.task, len(run.train_ds), len(val_ds) if val_ds is not None else 0,
                len(test_ds) if test_ds is not None else 0, plan.steps_per_epoch, run.total_steps, t.batch_size,
                acc.num_processes, t.gradient_accumulation_steps, plan.micro_batch_size, run.n_params / 1e6,
                str(acc.distributed_type).split(".")[-1])

    if run.progress:
        from tqdm.auto import tqdm

        run.bar = tqdm(total=run.total_steps, initial=state["global_step"], desc=f"{t.task}", unit="step",
                       dynamic_ncols=True)
    run.eval_every = t.eval_every or plan.steps_per_epoch
    run.last_ckpt_step = state["global_step"] if ckpt is not None else -1
    run.unwrapped = acc.unwrap_model(run.model)
    run.view = _EngineView(run.model, run.unwrapped)
    run.flip_skeleton = run.mcfg.get_skeleton()


def _train_step(run: _Run, batch: Dict[str, Any]) -> Dict[str, float]:
    """One micro-batch: forward, backward and, when the accumulation is complete, the optimizer
    step. Returns the batch's loss terms (``loss`` included)."""
    t, acc, model, cfg = run.t, run.acc, run.model, run.cfg
    run.streams.data_state = batch.pop("data_stream")
    model.train()
    if cfg.data.flip_augment:
        batch = flip_batch(batch, run.flip_skeleton, run.gen)
    with acc.accumulate(model):
        with acc.autocast():
            loss, logs = compute_loss(t.task, model, batch, run.mcfg, run.gen, pairing=t.pretrain_pairing,
                                      occlusion=(t.occlusion_prob, t.occlusion_max_joints, t.occlusion_limb_prob),
                                      pretrain_lift=t.pretrain_lift, pretrain_lift_input=t.pretrain_lift_input)
        acc.backward(loss)
        if not torch.isfinite(loss.detach()):
            raise FloatingPointError(f"non-finite loss {float(loss)} at step {run.state['global_step'] + 1}")
        logs["loss"] = float(loss.detach())
        for k, v in logs.items():
            run.running[k] = run.running.get(k, 0.0) + v
        run.n_running += 1
        if acc.sync_gradients:
            drop_frozen_encoder_grads(run.optimizer, cfg, run.state["global_step"])  # LP-FT
        if acc.sync_gradients and t.max_grad_norm is not None:
            acc.clip_grad_norm_(model.parameters(), t.max_grad_norm)
        run.optimizer.step()
        run.scheduler.step()
        run.optimizer.zero_grad(set_to_none=True)
    return logs


def _log_train(run: _Run, epoch: int, logs: Dict[str, float]) -> None:
    """The progress bar, and every ``training.log_every`` steps the mean loss terms over all ranks."""
    t, acc = run.t, run.acc
    gs = run.state["global_step"]
    lr = run.scheduler.get_last_lr()[0]
    if run.bar is not None:
        run.bar.update(1)
        run.bar.set_postfix(loss=f"{logs['loss']:.4f}", lr=f"{lr:.2e}")
    if gs % t.log_every == 0 or gs == run.total_steps:
        keys = sorted(run.running)
        dtype = torch.float32 if acc.device.type == "mps" else torch.float64
        means = acc.reduce(torch.tensor([run.running[k] / max(run.n_running, 1) for k in keys],
                                        dtype=dtype, device=acc.device), "mean")
        means = {k: float(v) for k, v in zip(keys, means.tolist())}
        means["lr"] = lr
        if run.main:
            run.writer.write(gs, epoch, "train", means)
            logger.info("step %d/%d epoch %d | %s", gs, run.total_steps, epoch,
                        " ".join(f"{k} {v:.4g}" for k, v in means.items()))
        run.running, run.n_running = {}, 0


def _save_best_model(run: _Run) -> None:
    """Write ``best_model/`` (main process; a collective gather first on sharded engines)."""
    weights = run.acc.get_state_dict(run.model) if _sharded(run.acc) else None  # collective
    if run.main:
        atomic_write_dir(os.path.join(run.out_dir, "best_model"),
                         lambda tmp: run.unwrapped.save_pretrained(tmp, state_dict=weights))


def _validate_and_keep_best(run: _Run, epoch: int) -> None:
    """Validate, log, and keep the best model so far (``best_model/`` with ``training.select_best``)."""
    from accelerate.utils import broadcast_object_list

    acc, state, gs = run.acc, run.state, run.state["global_step"]
    # sharded engines need every rank for a forward pass; the main process's numbers are kept
    sharded = _sharded(acc)
    vals = validate(run.view if sharded else run.unwrapped, run.val_ds, run.cfg) if run.main or sharded else None
    vals = broadcast_object_list([vals])[0]
    flat = {k: v for k, v in vals.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    value = float(vals[run.best_key])
    improved = state["best_metric"] is None or value < state["best_metric"]
    if improved:
        state["best_metric"], state["best_step"] = value, gs
        if run.t.select_best:
            _save_best_model(run)
    state["history"].append({"step": gs, **flat})
    if run.main:
        run.writer.write(gs, epoch, "val", flat)
        logger.info("validation step %d | %s%s", gs,
                    " ".join(f"{k} {v:.4g}" for k, v in flat.items() if k != "windows"),
                    " (best)" if improved else "")
    acc.wait_for_everyone()


def _save_checkpoint(run: _Run) -> None:
    """A resumable checkpoint of the current step (collective)."""
    write_checkpoint(run.ckpt_root, run.state["global_step"], accelerator=run.acc,
                     trainer_state={**run.state, "world_size": run.acc.num_processes, "config": run.cfg.to_dict()})


def _evaluate_and_save(run: _Run, epoch: int, done: bool) -> None:
    """After an optimizer step: validation when due (or ``done``), then a checkpoint when due."""
    t, gs = run.t, run.state["global_step"]
    if run.val_ds is not None and (gs % run.eval_every == 0 or done):
        _validate_and_keep_best(run, epoch)
    if (t.checkpoint_every and gs % t.checkpoint_every == 0) or done:
        _save_checkpoint(run)
        run.last_ckpt_step = gs
        if run.main:
            prune_checkpoints(run.ckpt_root, t.keep_checkpoints)


def _kill_if_asked(run: _Run) -> None:
    """The :data:`KILL_ENV` testing hook: SIGKILL this process after step ``kill_after_step``."""
    gs = run.state["global_step"]
    if run.kill_after_step is not None and gs == run.kill_after_step:
        logger.warning("%s=%d: killing this process (SIGKILL) after step %d", KILL_ENV, run.kill_after_step, gs)
        for h in logger.handlers:
            h.flush()
        os.kill(os.getpid(), signal.SIGKILL)


def _run_epoch(run: _Run) -> None:
    """The rest of the current epoch (from ``step_in_epoch``), stopping at ``total_steps``."""
    state, steps_per_epoch = run.state, run.plan.steps_per_epoch
    epoch, start = state["epoch"], state["step_in_epoch"]
    step_in_epoch = start
    if hasattr(run.train_ds, "set_epoch"):  # Accelerate's set_epoch reaches the data set only sometimes
        run.train_ds.set_epoch(epoch)
    for batch in epoch_loader(run.acc, run.loader, epoch, start, run.t.gradient_accumulation_steps):
        logs = _train_step(run, batch)
        if not run.acc.sync_gradients:
            continue
        state["global_step"] += 1
        step_in_epoch += 1
        epoch_done = step_in_epoch >= steps_per_epoch
        state["epoch"], state["step_in_epoch"] = (epoch + 1, 0) if epoch_done else (epoch, step_in_epoch)
        _log_train(run, epoch, logs)
        done = state["global_step"] >= run.total_steps
        _evaluate_and_save(run, epoch, done)
        _kill_if_asked(run)
        if done:
            break


def _finish(run: _Run, *, export: bool, export_dir: Optional[str], push_to_hub: Optional[str],
            t0: float) -> TrainResult:
    """A final checkpoint if none exists, the final (best or last) model and, with ``export``, the
    test evaluation and the exported folder."""
    from accelerate.utils import broadcast_object_list

    t, acc, state, main = run.t, run.acc, run.state, run.main
    if run.bar is not None:
        run.bar.close()
    if run.last_ckpt_step != state["global_step"]:  # resumed at the very end: make sure one exists
        _save_checkpoint(run)

    result = TrainResult(output_dir=run.out_dir, model_dir=None, global_step=state["global_step"],
                         best_metric=state["best_metric"], best_step=state["best_step"],
                         history=list(state["history"]))
    acc.wait_for_everyone()
    best_dir = os.path.join(run.out_dir, "best_model")
    use_best = t.select_best and state["best_step"] is not None and main and os.path.isdir(best_dir)
    use_best = broadcast_object_list([use_best])[0]
    final_model = None if use_best else _full_model(acc, run.model, run.unwrapped)
    if main:
        if use_best:
            final_model = type(run.unwrapped).from_pretrained(best_dir)
        final_model.eval()
        result.model = final_model
        if export:
            from .export import export_model

            result.eval_results = {} if run.test_ds is None else test_evaluation(final_model, run.test_ds, run.cfg,
                                                                                  progress=run.progress)
            result.model_dir = export_model(final_model, export_dir or os.path.join(run.out_dir, "model"), cfg=run.cfg,
                                            eval_results=result.eval_results, global_step=state["global_step"],
                                            best_step=state["best_step"] if t.select_best else None,
                                            push_to_hub=push_to_hub)
            logger.info("exported %s", result.model_dir)
    acc.wait_for_everyone()
    result.seconds = time.time() - t0
    return result


def _close(run: _Run) -> None:
    """Release the lock, close the metrics and the log file, unbind the streams (the accelerator may train again)."""
    if run.out_lock is not None:
        run.out_lock.release()
    if run.writer is not None:
        run.writer.close()
    if run.fh is not None:
        logger.removeHandler(run.fh)
        run.fh.close()
    if run.streams is not None:
        run.streams.bind(None, None)


def train(cfg: RunConfig, *, resume: Union[bool, str, None] = None, push_to_hub: Optional[str] = None,
          splits: Optional[Tuple[Any, Any, Any]] = None, progress: Optional[bool] = None,
          export: bool = True, export_dir: Optional[str] = None, kill_after_step: Optional[int] = None,
          accelerator=None, overwrite_output_dir: bool = False) -> TrainResult:
    """Train ``training.task`` as configured and export the best model.

    Args:
        cfg: the run config (:func:`~modeling_mpm.training.config.load_config`).
        resume: ``True`` = continue from the newest checkpoint in ``output_dir`` (a fresh start
            when there is none); a path = that checkpoint folder (must exist).
        push_to_hub: repo id to push the exported model to (checked before training).
        splits: ``(train, val, test)`` datasets instead of the ones ``cfg.data`` describes.
        progress: tqdm progress bar (default: ``training.progress_bar``, else only on a terminal).
        export: write ``export_dir`` (default ``output_dir/model``: model, card, test results) at the end.
        kill_after_step: testing hook, see :data:`KILL_ENV`.
        overwrite_output_dir: delete a previous run's outputs in ``output_dir`` and start over; without
            it (and without ``resume``) a folder holding files is refused (:mod:`.output_dir`).
    """
    t0 = time.time()
    push_to_hub = push_to_hub or cfg.hub.push_to_hub
    check_hub_ready(push_to_hub)
    if isinstance(resume, str) and not os.path.isfile(os.path.join(resume, "trainer_state.json")):
        raise MPMInputError(f"--resume {resume!r} is not a checkpoint folder (no trainer_state.json); give a "
                            "checkpoints/step_N folder of a run, or --resume alone for the newest one")
    if kill_after_step is None and os.environ.get(KILL_ENV):
        kill_after_step = int(os.environ[KILL_ENV])
    trackers = _trackers(cfg) if accelerator is None else []
    _preflight(cfg, resume, splits)  # nothing is written before every setting is known to work

    acc = accelerator or _fresh_accelerator(cfg, trackers)
    run = _open_run(cfg, acc, resume=resume, overwrite=overwrite_output_dir, progress=progress,
                    kill_after_step=kill_after_step)
    try:
        _build(run, splits)
        _restore(run, resume)
        while run.state["global_step"] < run.total_steps:
            _run_epoch(run)
        return _finish(run, export=export, export_dir=export_dir, push_to_hub=push_to_hub, t0=t0)
    finally:
        _close(run)
