from pathlib import Path

import numpy as np
import pytest

from modeling_mpm.data.bvh import parse_bvh, read_bvh
from modeling_mpm.data.mocap import CMU_BVH_SCALE, load_bvh_h36m17

CMU_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mocap" / "cmu"
needs_cmu = pytest.mark.skipif(not CMU_DIR.exists(), reason=f"real CMU BVH files not available ({CMU_DIR} missing)")

TINY = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
  JOINT Chest
  {
    OFFSET 0 1 0
    CHANNELS 2 Zrotation Xrotation
    JOINT Fixed
    {
      OFFSET 0 0 1
      End Site
      {
        OFFSET 2 0 0
      }
    }
  }
}
MOTION
Frames: 3
Frame Time: 0.01
1 2 3 90 0 0 0 0
0 0 0 0 0 0 90 90
0 0 0 0 0 0 0 0
"""


def test_tiny_bvh_forward_kinematics():
    m = parse_bvh(TINY)
    assert m.joint_names == ["Hips", "Chest", "Fixed", "Fixed_end"]
    assert m.num_frames == 3 and m.fps == pytest.approx(100.0)
    p = m.joint_positions()
    # frame 0: root at (1,2,3) turned 90 deg about Z: the chest offset (0,1,0) -> (-1,0,0)
    np.testing.assert_allclose(p[0, 0], [1, 2, 3], atol=1e-12)
    np.testing.assert_allclose(p[0, 1], [0, 2, 3], atol=1e-12)
    np.testing.assert_allclose(p[0, 2], [0, 2, 4], atol=1e-12)
    np.testing.assert_allclose(p[0, 3], [0, 4, 4], atol=1e-12)
    # frame 1: chest "Zrotation Xrotation" 90/90 = intrinsic Z then X: R = Rz(90) Rx(90);
    # (0,0,1) -> (1,0,0) (the extrinsic order would give (0,-1,0))
    np.testing.assert_allclose(p[1, 1], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(p[1, 2], [1, 1, 0], atol=1e-12)
    # joint without channels inherits the chest rotation: end site offset (2,0,0) -> R (2,0,0) = (0,2,0)
    np.testing.assert_allclose(p[1, 3], [1, 3, 0], atol=1e-12)
    np.testing.assert_allclose(p[2], [[0, 0, 0], [0, 1, 0], [0, 1, 1], [2, 1, 1]], atol=1e-12)
    np.testing.assert_allclose(m.joint_positions(scale=0.5), p * 0.5)
    assert m.joint_positions(include_end_sites=False).shape == (3, 3, 3)
    np.testing.assert_allclose(m.named_positions(["Fixed_end", "Hips"])[0], [[0, 4, 4], [1, 2, 3]], atol=1e-12)


def test_position_channels_in_any_order_replace_offset():
    text = TINY.replace("CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation",
                        "CHANNELS 4 Zposition Xrotation Xposition Yposition").replace(
        "OFFSET 0 0 0\n  CHANNELS", "OFFSET 5 5 5\n  CHANNELS")
    text = text.replace("1 2 3 90 0 0 0 0", "3 0 1 2 0 0").replace("0 0 0 0 0 0 90 90", "0 0 0 0 0 0").replace(
        "0 0 0 0 0 0 0 0", "0 0 0 0 0 0")
    m = parse_bvh(text)
    np.testing.assert_allclose(m.joint_positions()[0, 0], [1, 2, 3])


def test_trailing_extra_frame_line_is_ignored_with_warning():
    text = TINY + "9 9 9 9 9 9 9 9\n"
    with pytest.warns(UserWarning, match="beyond the declared 3 frames"):
        m = parse_bvh(text, source="x.bvh")
    assert m.num_frames == 3
    np.testing.assert_allclose(m.motion[2], 0)


@pytest.mark.parametrize("bad, message", [
    (TINY.replace("Frames: 3", "Frames: 4"), "declares 4 frames but has only 3"),
    (TINY.replace("CHANNELS 2 Zrotation Xrotation", "CHANNELS 2 Zrotation Wrotation"), r"line 9: unknown channel"),
    (TINY.replace("CHANNELS 2 Zrotation Xrotation", "CHANNELS 3 Zrotation Xrotation"), r"line 9: CHANNELS declares 3"),
    (TINY.replace("0 0 0 0 0 0 90 90", "0 0 0 0 0 90 90"), r"line 24: motion line has 7 values"),
    (TINY.replace("OFFSET 0 0 1", "OFFSET 0 x 1"), r"line 12: OFFSET values must be numbers"),
    (TINY.replace("HIERARCHY", "HIERARCHIE"), r"line 1: expected 'HIERARCHY'"),
    (TINY.replace("MOTION", "MOTON"), r"line 20: unexpected keyword 'MOTON'"),
    (TINY.replace("  }\n}\nMOTION", "  }\nMOTION"), r"MOTION before all joints were closed"),
])
def test_parse_errors_name_the_line(bad, message):
    with pytest.raises(ValueError, match=message):
        parse_bvh(bad, source="bad.bvh")


@needs_cmu
def test_real_cmu_take_bones_and_orientation():
    m = read_bvh(CMU_DIR / "01_01.bvh")
    assert m.num_frames == 2752 and m.fps == pytest.approx(120.0, rel=1e-3)
    pos = m.joint_positions(scale=CMU_BVH_SCALE)[1:]  # frame 0 is the converter's rest pose
    names = m.joint_names
    # rigid bones: length constant over time
    for j in m.joints[1:]:
        length = np.linalg.norm(pos[:, names.index(j.name)] - pos[:, j.parent], axis=-1)
        assert length.std() < 1e-6 + 1e-6 * length.mean(), j.name
    # subject about 1.5-1.7 m tall in the rest pose (metres after scaling), Y up
    rest = m.joint_positions(scale=CMU_BVH_SCALE)[0]
    height = rest[names.index("Head_end"), 1] - rest[names.index("LeftToeBase_end"), 1]
    assert 1.4 < height < 1.9
    # chirality: toes point forward = cross(left_hip - right_hip, up)
    up = np.array([0, 1, 0])
    fwd = np.cross(pos[:, names.index("LeftUpLeg")] - pos[:, names.index("RightUpLeg")], up)
    toe = pos[:, names.index("LeftToeBase")] - pos[:, names.index("LeftFoot")]
    assert (np.sum(fwd * toe, -1) > 0).mean() > 0.95


@needs_cmu
def test_real_cmu_to_h36m17():
    pose, fps = load_bvh_h36m17(CMU_DIR / "01_03.bvh", skip_frames=1)
    assert fps == 50.0 and pose.shape == (int((4510 - 1) / 120 * 50) + 1, 17, 3) and pose.dtype == np.float32
    assert (pose[:, 10, 2] > pose[:, 3, 2]).all()  # Z up: head top above the ankle
