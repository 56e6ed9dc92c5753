"""The README tells the truth: its quick start runs, and .ci/run runs its test command."""

import os
import re
import subprocess
import sys

from conftest import REPO

README = (REPO / "README.md").read_text()


def _block_after(heading: str, lang: str) -> str:
    section = README[README.index(heading):]
    m = re.search(rf"```{lang}\n(.*?)```", section, re.S)
    assert m, f"no {lang} block after {heading!r}"
    return m.group(1)


def test_ci_runs_exactly_the_readme_test_command():
    test_cmd = _block_after("Tests (sets up", "bash").strip()
    ci = (REPO / ".ci" / "run").read_text()
    assert test_cmd in ci.splitlines(), (test_cmd, ci)
    assert "torch==2.13.0" in test_cmd.split("&&")[0]
    assert "HF_HUB_OFFLINE=1" in test_cmd


def test_python_quick_start_runs(tmp_path):
    code = _block_after("## Quick start in Python", "python")
    code += "\nassert pred.pose_3d_center.shape == (4, 1, 17, 3) and pred.pose_3d.shape == (4, 243, 17, 3)\nprint('QUICKSTART_OK')\n"
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=600)
    assert "QUICKSTART_OK" in r.stdout, r.stderr[-3000:]
    assert (tmp_path / "mpm-pretrained" / "config.json").is_file()
    # the documented pre-training -> lifter transfer loads without a wall of UNEXPECTED/MISSING keys
    assert "UNEXPECTED" not in r.stderr and "MISSING" not in r.stderr, r.stderr[-3000:]
