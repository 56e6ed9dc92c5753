import numpy as np
import pytest

from modeling_mpm.render import ffmpeg_available, render_animation, render_frame_png

RNG = np.random.default_rng(0)


def _seq(frames=4):
    p3 = RNG.normal(scale=0.3, size=(frames, 17, 3))
    p3[:, 0] = 0
    p2 = RNG.uniform(0, 200, size=(frames, 17, 2))
    return p3, p2


def test_png(tmp_path):
    from PIL import Image

    p3, p2 = _seq(1)
    path = render_frame_png(p3[0], str(tmp_path / "f.png"), keypoints_2d=p2[0], image_size=(200, 200))
    im = Image.open(path)
    assert im.format == "PNG" and im.size[0] > im.size[1]  # two panels side by side
    arr = np.asarray(im.convert("RGB"))
    assert (arr != 255).any()  # something was drawn


def test_gif_frames_and_missing_joints(tmp_path):
    from PIL import Image

    p3, p2 = _seq(5)
    p2[2, 3] = np.nan  # missing joint is simply not drawn
    path = render_animation(p3, str(tmp_path / "a.gif"), keypoints_2d=p2, fps=10, frame_step=2)
    im = Image.open(path)
    assert im.format == "GIF" and im.n_frames == 3


def test_gif_3d_only(tmp_path):
    from PIL import Image

    p3, _ = _seq(2)
    im = Image.open(render_animation(p3, str(tmp_path / "b.gif")))
    assert im.n_frames == 2


def test_render_errors(tmp_path):
    p3, p2 = _seq(3)
    with pytest.raises(ValueError, match="gif or .mp4"):
        render_animation(p3, str(tmp_path / "a.avi"))
    with pytest.raises(ValueError, match="frames, joints, 3"):
        render_animation(p3[0], str(tmp_path / "a.gif"))
    with pytest.raises(ValueError, match="match pose_3d"):
        render_animation(p3, str(tmp_path / "a.gif"), keypoints_2d=p2[:2])
    with pytest.raises(ValueError, match="skeleton"):
        render_animation(p3[:, :16], str(tmp_path / "a.gif"))
    from modeling_mpm.render import pyav_available

    if not ffmpeg_available() and not pyav_available():
        with pytest.raises(ValueError, match="ffmpeg"):
            render_animation(p3, str(tmp_path / "a.mp4"))
