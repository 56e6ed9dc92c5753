"""bench/capture.py: Qualisys calibration reader and multi-view triangulation."""

import os
import sys

import numpy as np
import pytest

from modeling_mpm.cameras import look_at_rotation, project_to_pixels

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
from capture import CaptureCamera, read_qualisys_calibration, triangulate, undistort_points  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "pose2sim")
CALIB = os.path.join(DATA, "Calib.qca.txt")


def _cameras(distortion=True):
    """Four cameras 3-4 m around the origin, 2 m high, looking at (0, 0, 1); world Z up."""
    cams = []
    for i, (yaw, dist) in enumerate(((0.3, 3.5), (1.9, 4.0), (3.4, 3.2), (4.8, 3.8))):
        pos = np.array([dist * np.cos(yaw), dist * np.sin(yaw), 2.0])
        R = look_at_rotation(pos, np.array([0.0, 0.0, 1.0]))
        k = np.array([1500.0, 1490.0, 540.0, 960.0, -0.05, 0.02, 0.0, 0.001, -0.0005])
        if not distortion:
            k[4:] = 0
        cams.append(CaptureCamera(f"cam{i + 1}", k, 1080, 1920, R, -R @ pos))
    return cams


def _points(n=50, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform([-0.5, -0.5, 0.1], [0.5, 0.5, 1.8], size=(n, 3))


@pytest.mark.parametrize("distortion", [False, True])
def test_exact_recovery_from_noise_free_projections(distortion):
    cams = _cameras(distortion)
    X = _points()
    uv = np.stack([c.project(X) for c in cams])
    res = triangulate(uv, cams)
    np.testing.assert_allclose(res.points, X, atol=1e-7)
    assert np.nanmax(res.reprojection_error) < 1e-5
    assert res.used.all() and res.reprojection_error.shape == (4, len(X))


def test_undistort_inverts_the_package_projection():
    cams = _cameras(True)
    X = _points(200, seed=1)
    cam = cams[0].world_to_camera(X)
    xy = undistort_points(project_to_pixels(cam, cams[0].intrinsics), cams[0].intrinsics)
    np.testing.assert_allclose(xy, cam[:, :2] / cam[:, 2:], atol=1e-9)
    assert np.isnan(undistort_points(np.array([np.nan, 1.0]), cams[0].intrinsics)).all()


def test_outlier_view_is_left_out():
    cams = _cameras()
    X = _points(30, seed=2)
    uv = np.stack([c.project(X) for c in cams])
    uv[2, :10] += np.array([40.0, -25.0])          # view 3 is wrong for the first 10 points
    plain = triangulate(uv, cams)
    assert np.abs(plain.points[:10] - X[:10]).max() > 1e-3
    res = triangulate(uv, cams, max_reprojection_error=5.0)
    np.testing.assert_allclose(res.points, X, atol=1e-7)
    assert not res.used[2, :10].any() and res.used[:, 10:].all()
    np.testing.assert_allclose(res.reprojection_error[2, :10], np.hypot(40.0, 25.0), rtol=0.05)


def test_two_views_remain_and_unresolved_points_are_rejected():
    cams = _cameras()[:2]
    X = _points(5, seed=3)
    uv = np.stack([c.project(X) for c in cams])
    uv[1, 0] += 60.0
    kept = triangulate(uv, cams, max_reprojection_error=5.0)
    assert kept.used.all() and np.isfinite(kept.points).all()   # 2 views are never reduced to 1
    rej = triangulate(uv, cams, max_reprojection_error=5.0, reject_unresolved=True)
    assert np.isnan(rej.points[0]).all() and np.isfinite(rej.points[1:]).all()
    assert np.isfinite(rej.reprojection_error[:, 0]).all()      # the evidence is kept
    assert not rej.used[:, 0].any()


def test_weights_and_missing_views():
    cams = _cameras()
    X = _points(6, seed=4)
    uv = np.stack([c.project(X) for c in cams])
    uv[0, 0] = np.nan                       # not seen in view 1
    w = np.ones((4, 6))
    w[1:, 1] = 0.0                          # point 1 seen by view 1 only -> not triangulated
    uv[3, 2] += 100.0
    w[3, 2] = 0.0                           # a zero weight ignores the wrong observation
    res = triangulate(uv, cams, weights=w)
    np.testing.assert_allclose(res.points[[0, 2, 3, 4, 5]], X[[0, 2, 3, 4, 5]], atol=1e-7)
    assert np.isnan(res.points[1]).all() and np.isnan(res.reprojection_error[:, 1]).all()
    assert np.isnan(res.reprojection_error[0, 0]) and not res.used[0, 0]
    # confidences as a third value act as weights
    conf = np.concatenate([uv, w[..., None]], axis=-1)
    np.testing.assert_allclose(triangulate(conf, cams).points, res.points, atol=1e-9, equal_nan=True)
    # extra leading axes
    res2 = triangulate(np.stack([c.project(X.reshape(2, 3, 3)) for c in cams]), cams)
    assert res2.points.shape == (2, 3, 3) and res2.reprojection_error.shape == (4, 2, 3)


def test_bad_input_raises_value_error_with_a_sentence(tmp_path):
    cams = _cameras()
    uv = np.zeros((4, 3, 2))
    with pytest.raises(ValueError, match="at least 2 cameras"):
        triangulate(uv[:1], cams[:1])
    with pytest.raises(ValueError, match=r"\(views=4"):
        triangulate(uv[:3], cams)
    with pytest.raises(ValueError, match="non-negative"):
        triangulate(uv, cams, weights=-np.ones((4, 3)))
    with pytest.raises(ValueError, match="weights must be shaped"):
        triangulate(uv, cams, weights=np.ones((4, 2)))
    with pytest.raises(ValueError, match="min_views"):
        triangulate(uv, cams, min_views=1)
    with pytest.raises(ValueError, match="positive number of pixels"):
        triangulate(uv, cams, max_reprojection_error=0)
    with pytest.raises(ValueError, match="does not exist"):
        read_qualisys_calibration(tmp_path / "missing.qca.txt")
    bad = tmp_path / "bad.qca.txt"
    bad.write_text("<calibration><cameras>")
    with pytest.raises(ValueError, match="XML parse error"):
        read_qualisys_calibration(bad)
    bad.write_text("<calibration/>")
    with pytest.raises(ValueError, match="no <cameras><camera>"):
        read_qualisys_calibration(bad)
    text = open(CALIB).read()
    bad.write_text(text.replace('r11="0.5536380477336265"', 'r11="5.5"'))
    with pytest.raises(ValueError, match="not a rotation"):
        read_qualisys_calibration(bad)
    bad.write_text(text.replace('focalLengthU="107599.671875"', 'focalLengthU="abc"'))
    with pytest.raises(ValueError, match="not a number"):
        read_qualisys_calibration(bad)


def test_real_qualisys_calibration_file():
    cams = read_qualisys_calibration(CALIB)
    assert [c.name for c in cams] == ["cam01", "cam02", "cam03", "cam04"]
    c = cams[0]
    assert c.image_size == (1088, 1920)
    np.testing.assert_allclose(c.intrinsics[:4], [107599.671875 / 64, 107588.828125 / 64, 34110.316406 / 64,
                                                  60680.792969 / 64])
    np.testing.assert_allclose(c.intrinsics[4:6], [-0.046183 / 64, 0.139983 / 64])
    np.testing.assert_allclose(c.center, [1.4602323709212087, -1.9091590482454608, 1.8965058524092062])
    raw = read_qualisys_calibration(CALIB, distortion_scale=1.0)
    np.testing.assert_allclose(raw[0].intrinsics[4:6], [-0.046183, 0.139983])
    for c in cams:
        np.testing.assert_allclose(c.R @ c.R.T, np.eye(3), atol=1e-9)
        assert np.linalg.det(c.R) > 0
        assert c.center[2] > 1.5                  # mounted high ...
        assert c.R[2, 2] < -0.3                   # ... looking down (world Z up)
        # a point 1 m above the capture area is in front of the camera and inside the image
        cam = c.world_to_camera(np.array([-0.9, 0.0, 1.0]))
        uv = c.project(np.array([-0.9, 0.0, 1.0]))
        assert cam[2] > 2.0 and 0 < uv[0] < c.width and 0 < uv[1] < c.height


def test_real_detections_reproject_within_a_few_pixels():
    """The calibration conventions, checked by reprojection: BlazePose body joints of six frames
    of the pose2sim demo (tests/data/pose2sim, see DATA_NOTES.md) triangulate consistently."""
    cams = read_qualisys_calibration(CALIB)
    d = np.load(os.path.join(DATA, "single_person_blazepose_body.npz"))
    kp = d["keypoints"].astype(np.float64)                      # (4, 6, 12, 3)
    w = np.where(kp[..., 2] >= 0.5, kp[..., 2], 0.0)
    res = triangulate(kp[..., :2], cams, weights=w, max_reprojection_error=15.0)
    used_err = res.reprojection_error[res.used]
    assert np.median(used_err) < 10.0
    assert res.used.mean() > 0.6
    # a person: ankles near the floor, shoulders above the hips (world Z up, metres)
    z = res.points[..., 2]
    # landmarks in the file: BlazePose 11-16 (shoulders, elbows, wrists), 23-28 (hips, knees, ankles)
    ankles, hips, shoulders = [10, 11], [6, 7], [0, 1]
    assert np.nanmedian(z[:, ankles]) < 0.4 < np.nanmedian(z[:, hips]) < np.nanmedian(z[:, shoulders]) < 2.0
    thigh = np.linalg.norm(res.points[:, 7] - res.points[:, 9], axis=-1)   # right hip - right knee
    assert 0.3 < np.nanmedian(thigh) < 0.5
