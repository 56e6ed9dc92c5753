"""Hugging Face conventions outside the model: the exported folder's pipeline code, model and
dataset cards, the ``evaluate`` metric module and the ``mpm`` command line (fast help, version,
one flag style)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import pipeline

import modeling_mpm
from modeling_mpm import MPMConfig, MPMForMaskedPoseModeling, MPMForPoseLifting
from modeling_mpm import metrics as M
from remote_code import BLOCK_PACKAGE  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _tiny(**kw):
    base = dict(num_frames=9, num_layers=1, hidden_size=32, intermediate_size=64, num_attention_heads=4)
    base.update(kw)
    return MPMConfig(**base)


# ---------------------------------------------------------------------------- export
def _export(tmp_path, model, task, **overrides):
    from modeling_mpm.training.config import load_config
    from modeling_mpm.training.export import export_model

    items = ["data.source=synthetic", f"training.task={task}"] + [f"{k}={v}" for k, v in overrides.items()]
    cfg = load_config(None, items)
    return export_model(model, str(tmp_path / task), cfg=cfg, eval_results={}, global_step=1)


REMOTE_PIPE = BLOCK_PACKAGE + textwrap.dedent(
    """
    import json, sys, importlib.abc
    import numpy as np
    from transformers import pipeline
    lift_dir, comp_dir, kp = sys.argv[1:4]
    lift = pipeline("pose-lifting", model=lift_dir, trust_remote_code=True)
    comp = pipeline("pose-completion", model=comp_dir, trust_remote_code=True)
    a = lift(np.load(kp), image_size=(640, 480), keypoint_format="h36m", mode="seq2seq")["pose_3d"]
    pose = np.zeros((9, 17, 3)); pose[:, 3] = np.nan
    b = comp(pose)["pose_3d"]
    assert "modeling_mpm" not in sys.modules
    print(json.dumps({"lift": a.tolist(), "lift_cls": type(lift).__module__, "comp_shape": list(b.shape)}))
    """
)


def test_exported_folders_carry_the_pipeline_code(tmp_path):
    torch.manual_seed(0)
    lifter = MPMForPoseLifting(_tiny()).eval()
    completer = MPMForMaskedPoseModeling(_tiny(mask_mode="tube", temporal_mask_ratio=0.0)).eval()
    lift_dir = _export(tmp_path, lifter, "lift")
    comp_dir = _export(tmp_path, completer, "complete3d")
    for folder, task in ((lift_dir, "pose-lifting"), (comp_dir, "pose-completion")):
        cfg = json.loads(Path(folder, "config.json").read_text())
        assert list(cfg["custom_pipelines"]) == [task]
        assert Path(folder, "pipeline_mpm.py").is_file() and Path(folder, "modeling_mpm.py").is_file()
    # with the package imported: no trust_remote_code needed, the installed classes serve the task
    pipe = pipeline("pose-lifting", model=lift_dir)
    assert type(pipe).__module__ == "modeling_mpm.pipeline_mpm"
    kp = np.random.default_rng(0).uniform(100, 500, size=(12, 17, 2))
    np.save(tmp_path / "kp.npy", kp)
    want = pipe(kp, image_size=(640, 480), keypoint_format="h36m", mode="seq2seq")["pose_3d"]
    # the hidden custom_pipelines entry is still saved when the folder is saved again
    pipe.model.config.save_pretrained(tmp_path / "resaved")
    assert "pose-lifting" in json.loads((tmp_path / "resaved" / "config.json").read_text())["custom_pipelines"]
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"), PYTHONPATH="",
               OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", REMOTE_PIPE, lift_dir, comp_dir, str(tmp_path / "kp.npy")],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert not got["lift_cls"].startswith("modeling_mpm") and got["comp_shape"] == [9, 17, 3]
    np.testing.assert_allclose(np.array(got["lift"]), want, atol=1e-5)


# ---------------------------------------------------------------------------- cards
def test_model_card_metadata_uses_hub_ids_only(tmp_path):
    from huggingface_hub import ModelCard

    from modeling_mpm.model_card import TEMPLATE_PATH, write_model_card

    assert TEMPLATE_PATH.parent == Path(modeling_mpm.__file__).parent  # package data, in the wheel
    (tmp_path / "runs" / "pretrain" / "model").mkdir(parents=True)
    local_base = str(tmp_path / "runs" / "pretrain" / "model")
    results = {"plain": {"mpjpe": 50.0, "p_mpjpe": 40.0, "windows": 10, "per_action": {}}}
    model = MPMForPoseLifting(_tiny())
    path = write_model_card(str(tmp_path), model, task="lift", eval_results=results, base_model=local_base,
                            dataset_type="human3.6m", dataset_name="Human3.6M", dataset_split="test",
                            datasets=["org/h36m-prepared", str(tmp_path), "runs/h36m/prepared"])
    card = ModelCard.load(path)
    d = card.data
    assert d.library_name == "transformers" and d.pipeline_tag == "other" and d.license == "apache-2.0"
    assert "3d-human-pose-estimation" in d.tags
    assert d.base_model is None and d.datasets == ["org/h36m-prepared"]
    assert str(tmp_path) not in str(card.content)  # no local path anywhere in the card
    r = d.eval_results[0]
    assert r.task_type == "other" and r.dataset_type == "human3.6m"
    assert "@article{zhang2023mpm" in card.text and 'trust_remote_code=True' in card.text
    hub = write_model_card(str(tmp_path), model, task="lift", base_model="org/mpm-pretrain")
    assert ModelCard.load(hub).data.base_model == "org/mpm-pretrain"


def test_export_dataset_description_hub_ids(tmp_path):
    from modeling_mpm.training.config import load_config
    from modeling_mpm.training.export import dataset_description

    (tmp_path / "h36m17").mkdir()
    cfg = load_config(None, ["data.source=prepared", f'data.paths=["{tmp_path / "h36m17"}", "org/amass-joints"]'])
    desc = dataset_description(cfg)
    assert desc["datasets"] == ["org/amass-joints"]
    assert desc["dataset_type"] == "human3.6m+org/amass-joints"
    assert str(tmp_path) not in json.dumps(desc)


def test_dataset_card_and_public_licence_warning(tmp_path, capsys):
    from modeling_mpm.data.dataset_card import build_dataset_card, licence_warning

    for source in ("h36m", "3dhp", "amass"):
        assert "licen" in licence_warning(source)
        card = build_dataset_card(source, {"train": 3, "test": 1}, "org/x")
        assert card.data.license == "other" and card.data.license_name
        assert "@" in card.text.split("## Citation", 1)[1] and "| train | 3 |" in card.text
    assert licence_warning("demo") is None and licence_warning("bvh") is None
    assert build_dataset_card("demo").data.license == "apache-2.0"
    # the CLI warns on --public before it refuses to push offline (HF_HUB_OFFLINE=1 in the tests)
    from modeling_mpm.cli import main as mpm

    npz = tmp_path / "h36m.npz"
    np.savez(npz, positions_3d={})
    rc = mpm(["prepare", "h36m", "--positions-3d", str(npz), "--output", str(tmp_path / "out"),
              "--push-to-hub", "org/x", "--public"])
    err = capsys.readouterr().err
    assert rc == 2 and "warning: --public" in err and "Human3.6M" in err and "HF_HUB_OFFLINE" in err
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------- evaluate
def test_evaluate_metric_module_offline():
    import evaluate

    rng = np.random.default_rng(0)
    ref = rng.normal(scale=0.3, size=(40, 17, 3))
    pred = ref * 1.1 + rng.normal(scale=0.02, size=ref.shape)
    actions = ["walk"] * 25 + ["sit"] * 15
    metric = evaluate.load(str(M.EVALUATE_METRIC_DIR))
    for i in range(0, 40, 16):
        metric.add_batch(predictions=pred[i:i + 16], references=ref[i:i + 16])
    out = metric.compute(actions=actions, sequence_ids=["a"] * 20 + ["b"] * 20, skeleton="h36m17")
    meter = M.ActionErrorMeter()
    meter.update(M.mpjpe_per_frame(pred, ref) * 1000, actions)
    assert out["mpjpe"] == pytest.approx(meter.mean_over_actions())
    assert out["mpjpe_frames"] == pytest.approx(M.mpjpe(pred, ref) * 1000)
    assert out["p_mpjpe_frames"] == pytest.approx(M.p_mpjpe(pred, ref) * 1000)
    assert out["n_mpjpe_frames"] == pytest.approx(M.n_mpjpe(pred, ref) * 1000)
    assert out["n_mpjpe_frames"] < out["mpjpe_frames"]  # the 1.1 scale is removed
    want_mpjve = np.mean([M.mpjve(pred[:20], ref[:20]), M.mpjve(pred[20:], ref[20:])]) * 1000
    assert out["mpjve"] == pytest.approx(want_mpjve)  # both sequences have 19 steps
    assert out["pck"] == pytest.approx(M.pck_3dhp(pred, ref, skeleton="h36m17"))
    assert out["auc"] == pytest.approx(M.auc_3dhp(pred, ref, skeleton="h36m17"))
    assert set(out["per_action"]) == {"walk", "sit"} and out["per_action"]["sit"]["poses"] == 15
    with pytest.raises(ValueError, match="unit"):
        metric.compute(predictions=pred[:2], references=ref[:2], unit="inch")
    assert (M.EVALUATE_METRIC_DIR / "README.md").read_text().startswith("---")


def test_train_folder_does_not_shadow_evaluate():
    import importlib.machinery

    assert (REPO / "train" / "eval_lifting.py").is_file()
    # nothing in train/ (on sys.path when running train/*.py) answers "import evaluate"
    assert importlib.machinery.PathFinder.find_spec("evaluate", [str(REPO / "train")]) is None


def test_mpm_eval_uses_the_metric_module(tmp_path):
    from modeling_mpm.cli.eval import main as eval_main

    torch.manual_seed(0)
    lifter = MPMForPoseLifting(_tiny())
    folder = _export(tmp_path, lifter, "lift")
    out = tmp_path / "eval.json"
    rc = eval_main(["--model", folder, "--data", "synthetic", "--max-windows", "12", "--flip", "off",
                    "--mode", "all_frames", "--output-json", str(out), "--no-progress"])
    assert rc == 0
    res = json.loads(out.read_text())["no flip"]
    assert res["metric"]["mpjpe"] == pytest.approx(res["mpjpe"], rel=1e-6)
    assert res["metric"]["p_mpjpe"] == pytest.approx(res["p_mpjpe"], rel=1e-6)
    assert res["metric"]["n_mpjpe"] > 0 and res["metric"]["mpjve"] > 0


def test_mpm_eval_accepts_a_hub_id_from_the_offline_cache(tmp_path, monkeypatch):
    import shutil

    import huggingface_hub

    from modeling_mpm.cli.eval import main as eval_main

    torch.manual_seed(0)
    folder = _export(tmp_path, MPMForPoseLifting(_tiny()), "lift")
    snap = tmp_path / "hub" / "models--mpm-test--lifter" / "snapshots" / ("0" * 40)
    shutil.copytree(folder, snap)
    (snap.parent.parent / "refs").mkdir()
    (snap.parent.parent / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    out = tmp_path / "eval.json"
    assert eval_main(["--model", "mpm-test/lifter", "--data", "synthetic", "--max-windows", "6", "--flip", "off",
                      "--output-json", str(out), "--no-progress"]) == 0
    assert json.loads(out.read_text())["no flip"]["windows"] == 6


def test_mpm_eval_refuses_a_bad_model(tmp_path, capsys):
    from modeling_mpm.cli.eval import main as eval_main

    with pytest.raises(SystemExit):
        eval_main(["--model", str(tmp_path)])
    assert "is not a save_pretrained folder (no config.json)" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a Hub id that is not in the offline cache
        eval_main(["--model", "mpm-test/not-cached"])
    assert "not in the local cache and cannot be downloaded" in capsys.readouterr().err


# ---------------------------------------------------------------------------- CLI
def test_mpm_help_and_version_do_not_import_torch():
    code = ("import sys, modeling_mpm_cli\n"
            "modeling_mpm_cli.main(['--help'])\n"
            "modeling_mpm_cli.main(['--version'])\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'modeling_mpm', 'numpy'))\n"
            "print('HEAVY', heavy)\n"
            "print('DISPATCHER', modeling_mpm_cli.load_dispatcher().__file__)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "HEAVY []" in r.stdout
    # this checkout's dispatcher, the cli package's __init__ run from its file
    assert f"DISPATCHER {REPO / 'modeling_mpm' / 'cli' / '__init__.py'}" in r.stdout
    assert "usage: mpm <command>" in r.stdout
    assert f"mpm (modeling-mpm) {modeling_mpm.__version__}" in r.stdout
    # the console script entry point is that module
    text = (REPO / "pyproject.toml").read_text()
    assert 'mpm = "modeling_mpm_cli:main"' in text and '"modeling_mpm_cli"' in text


def test_mpm_help_into_a_closed_pipe_is_quiet():
    """`mpm --help | head -1`: the reader leaves first; exit 141 (SIGPIPE's code), no traceback."""
    code = "import sys, time, modeling_mpm_cli\ntime.sleep(0.5)\nsys.exit(modeling_mpm_cli.main(['--help']))\n"
    p = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()  # before the child writes
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == 141 and "Traceback" not in err, err


def test_every_subcommand_lives_in_the_cli_package():
    from modeling_mpm.cli import SUBCOMMANDS, entry_point

    assert set(SUBCOMMANDS) == {"demo", "lift", "complete", "render", "lift-video", "export-onnx", "convert",
                                "eval", "prepare", "train"}
    for name, (module, _) in SUBCOMMANDS.items():
        assert module.startswith("modeling_mpm.cli."), (name, module)
        entry = entry_point(name)
        assert callable(entry) and entry.__module__ == module, (name, entry)
    assert entry_point("lift").__name__ == "lift_main" and entry_point("render").__name__ == "render_main"
    # no command line left in the library modules
    import modeling_mpm.convert_official
    import modeling_mpm.demo
    import modeling_mpm.export

    for lib in (modeling_mpm.demo, modeling_mpm.export, modeling_mpm.convert_official):
        assert not hasattr(lib, "main"), lib.__name__


def test_import_still_registers_everything():
    from transformers import AutoConfig, AutoModel, AutoModelForPreTraining
    from transformers.pipelines import PIPELINE_REGISTRY

    assert type(AutoConfig.for_model("mpm")) is MPMConfig
    assert type(AutoModelForPreTraining.from_config(_tiny())) is MPMForMaskedPoseModeling
    assert type(AutoModel.from_config(_tiny())).__name__ == "MPMModel"
    assert {"pose-lifting", "pose-completion"} <= set(PIPELINE_REGISTRY.get_supported_tasks())


def test_kebab_case_flags_with_snake_case_aliases():
    from modeling_mpm.cli import cli_style, plain_text
    from modeling_mpm.cli.eval import build_parser

    p = build_parser()
    kebab = p.parse_args(["--model", "m", "--data-paths", "a", "b", "--occluded-joints", "2", "--no-progress"])
    snake = p.parse_args(["--model", "m", "--data_paths", "a", "b", "--occluded_joints", "2", "--no_progress"])
    assert vars(kebab) == vars(snake) and kebab.data_paths == ["a", "b"] and kebab.progress is False
    help_text = p.format_help()
    assert "--data-paths" in help_text and "--data_paths" not in help_text
    assert "``" not in help_text and ":func:" not in help_text
    # a parser written in kebab-case gets the snake_case alias too
    import argparse

    q = argparse.ArgumentParser(description="See :func:`modeling_mpm.inference.lift_sequence` and ``tds``.")
    q.add_argument("--image-size", type=int)
    cli_style(cli_style(q))  # idempotent
    assert q.parse_args(["--image-size", "3"]).image_size == 3
    assert q.parse_args(["--image_size", "4"]).image_size == 4
    assert q.format_help().count("--image") == 2  # usage + option list, kebab only
    assert plain_text(q.description) == "See modeling_mpm.inference.lift_sequence and 'tds'."
    # mpm lift-video too
    from modeling_mpm.cli.lift_video import build_parser as video_parser

    v = video_parser()
    assert vars(v.parse_args(["x.mp4", "-o", "o.npz", "--model", "m", "--max_frames", "5", "--pose_model", "p"])) == \
        vars(v.parse_args(["x.mp4", "-o", "o.npz", "--model", "m", "--max-frames", "5", "--pose-model", "p"]))


@pytest.mark.parametrize("command", ["lift", "complete", "render", "export-onnx", "prepare", "demo", "convert",
                                     "eval", "lift-video"])
def test_every_command_help_is_kebab_case(command, capsys):
    from modeling_mpm.cli import main as mpm

    argv = [command, "h36m", "--help"] if command == "prepare" else [command, "--help"]
    with pytest.raises(SystemExit) as exit_info:
        mpm(argv)
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    flags = [w for w in text.replace(",", " ").split() if w.startswith("--")]
    assert flags and not [f for f in flags if "_" in f.split("=")[0]], flags
    assert "``" not in text
