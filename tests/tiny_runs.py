"""The tiny run configuration the training tests share: a 9-frame, 1-layer, width-32 model trained
for 2 steps on synthetic sequences."""

from modeling_mpm.training.config import RunConfig

TINY_MODEL = {"num_frames": 9, "num_layers": 1, "hidden_size": 32, "intermediate_size": 64,
              "num_attention_heads": 4}


def tiny_run_config(tmp, task="pretrain", **training):
    """RunConfig writing to ``tmp``; ``training`` overrides keys of the training section."""
    return RunConfig({
        "model": dict(TINY_MODEL),
        "data": {"source": "synthetic", "synthetic_sequences": 4, "synthetic_length": 40, "eval_stride": 8},
        "training": {"task": task, "output_dir": str(tmp), "batch_size": 8, "max_steps": 2, "checkpoint_every": 2,
                     "log_every": 1, "tensorboard": False, "progress_bar": False, **training},
        "eval": {"batch_size": 64},
    })


#: the smaller model of the reliability tests (checkpoints every step, three kept)
RELIABILITY_MODEL = {"num_frames": 9, "num_layers": 1, "hidden_size": 16, "intermediate_size": 32,
                     "num_attention_heads": 2}


def reliability_raw_config(out, **training):
    """The reliability tests' run configuration as a plain dict (they also corrupt it before use)."""
    return {
        "model": dict(RELIABILITY_MODEL),
        "data": {"source": "synthetic", "synthetic_sequences": 3, "synthetic_length": 30, "eval_stride": 9},
        "training": {"task": "pretrain", "output_dir": str(out), "batch_size": 4, "max_steps": 2,
                     "checkpoint_every": 1, "keep_checkpoints": 3, "log_every": 1, "tensorboard": False,
                     "progress_bar": False, "eval_every": 100, **training},
        "eval": {"batch_size": 16},
    }
