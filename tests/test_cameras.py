import json
import math

import numpy as np
import pytest

from modeling_mpm import cameras as C


def test_h36m_calibration_is_complete_and_sane():
    assert set(C.H36M_EXTRINSICS) == {"S1", "S5", "S6", "S7", "S8", "S9", "S11"}
    for subject in C.H36M_SUBJECTS:
        cams = C.h36m_cameras(subject)
        assert [c.id for c in cams] == list(C.H36M_CAMERA_IDS)
        for cam in cams:
            assert np.linalg.norm(cam.orientation) == pytest.approx(1.0, abs=1e-6)
            # cameras stand 3-6 m from the capture centre, ~1.5 m high
            assert 3.0 < np.linalg.norm(cam.translation[:2]) < 6.5
            assert 1.3 < cam.translation[2] < 1.8
            # the optical axis passes close to the capture centre (world origin, ~1 m high)
            axis = C.qrot(cam.orientation, np.array([0.0, 0.0, 1.0]))
            to_centre = np.array([0.0, 0.0, 1.0]) - cam.translation
            miss = np.linalg.norm(np.cross(axis, to_centre))
            assert miss < 1.5, (subject, cam.id, miss)
            # a subject at the centre is in front of the camera and inside the image
            p = cam.world_to_camera(np.array([[0.0, 0.0, 1.0]]))
            assert p[0, 2] > 3.0
            uv = cam.project(p)[0]
            assert 0 < uv[0] < cam.width and 0 < uv[1] < cam.height
    assert C.h36m_camera("S1", 0).image_size == (1000, 1002)
    assert C.h36m_camera("S1", "55011271").image_size == (1000, 1000)


def test_h36m_camera_errors():
    with pytest.raises(ValueError, match="unknown Human3.6M subject"):
        C.h36m_camera("S2", 0)
    with pytest.raises(ValueError, match="camera index"):
        C.h36m_camera("S1", 4)
    with pytest.raises(ValueError, match="camera id"):
        C.h36m_camera("S1", "123")


def test_world_camera_roundtrip():
    cam = C.h36m_camera("S9", 2)
    x = np.random.default_rng(0).normal(size=(5, 17, 3))
    back = C.camera_to_world(cam.world_to_camera(x), cam.orientation, cam.translation)
    np.testing.assert_allclose(back, x, atol=1e-9)
    # the camera centre maps to the camera-frame origin
    np.testing.assert_allclose(cam.world_to_camera(cam.translation[None]), 0, atol=1e-9)


def test_projection_of_known_points():
    k = np.array([1000.0, 900.0, 500.0, 400.0, 0, 0, 0, 0, 0])
    uv = C.project_to_pixels(np.array([0.5, -0.2, 4.0]), k)
    np.testing.assert_allclose(uv, [1000 * 0.125 + 500, 900 * -0.05 + 400])
    # distortion: x' = x (1 + k1 r2 + k2 r4 + k3 r6 + p1 x + p2 y) + p r2
    k = np.array([1000.0, 1000.0, 500.0, 500.0, -0.2, 0.25, -0.003, -0.001, -0.0014])
    x, y = 0.125, -0.05
    r2 = x * x + y * y
    rad = 1 - 0.2 * r2 + 0.25 * r2 ** 2 - 0.003 * r2 ** 3
    tan = -0.001 * x - 0.0014 * y
    exp = [1000 * (x * (rad + tan) - 0.001 * r2) + 500, 1000 * (y * (rad + tan) - 0.0014 * r2) + 500]
    np.testing.assert_allclose(C.project_to_pixels(np.array([0.5, -0.2, 4.0]), k), exp, rtol=1e-12)


def test_normalisation_and_normalised_projection_agree():
    w, h = 1000, 1002
    np.testing.assert_allclose(C.normalize_screen_coordinates(np.array([500.0, 501.0]), w, h), [0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(C.normalize_screen_coordinates(np.array([0.0, 0.0]), w, h), [-1.0, -h / w])
    x = np.random.default_rng(1).uniform(0, 1000, size=(4, 2))
    np.testing.assert_allclose(C.image_coordinates(C.normalize_screen_coordinates(x, w, h), w, h), x)
    cam = C.h36m_camera("S1", 0)
    pts = cam.world_to_camera(np.random.default_rng(2).normal(0, 0.4, size=(10, 3)) + [0, 0, 1])
    a = C.normalize_screen_coordinates(cam.project(pts), cam.width, cam.height)
    b = C.project_normalized(pts, cam.normalized_intrinsics())
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_flipped_camera_mirrors_projection():
    cam = C.h36m_camera("S5", 1)
    k = cam.normalized_intrinsics().astype(np.float64)
    kf = k.copy()
    kf[2] *= -1
    kf[7] *= -1
    pts = cam.world_to_camera(np.random.default_rng(3).normal(0, 0.4, size=(20, 3)) + [0, 0, 1])
    a = C.project_normalized(pts, k)
    b = C.project_normalized(pts * [-1, 1, 1], kf)
    np.testing.assert_allclose(b, a * [-1, 1], atol=1e-9)


def test_virtual_camera_geometry():
    cam = C.VirtualCamera(yaw=0.0, elevation=0.0, distance=5.0, focal=1000.0)
    R = cam.rotation
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)
    centre = np.array([2.0, 3.0, 1.0])
    pts = centre + np.array([[0, 0, 0], [0, 0, 0.5], [0, 0.5, 0]])  # centre, above, +Y
    uv = cam.project(cam.to_camera(pts, centre))
    np.testing.assert_allclose(uv[0], [500, 500])
    assert uv[1, 1] < uv[0, 1]  # up in the world is up in the image
    assert uv[2, 0] > uv[0, 0]  # camera on +X looking at -X: +Y is on the image right
    cam_up = C.VirtualCamera(yaw=0.0, elevation=math.radians(30), distance=5.0, focal=1000.0)
    assert cam_up.to_camera(pts, centre)[0, 2] == pytest.approx(5.0)


def test_virtual_camera_sampler_seeded_and_in_range():
    s = C.VirtualCameraSampler()
    a = [s.sample(np.random.default_rng(7)) for _ in range(2)]
    assert a[0] == a[1]
    cams = [s.sample(np.random.default_rng(i)) for i in range(50)]
    assert all(s.distance_range[0] <= c.distance <= s.distance_range[1] for c in cams)
    assert all(s.focal_range[0] <= c.focal <= s.focal_range[1] for c in cams)
    assert len({round(c.yaw, 6) for c in cams}) == 50
    fixed = s.fixed(4)
    assert [round(math.degrees(c.yaw)) for c in fixed] == [45, 135, 225, 315]


def test_load_camera_json(tmp_path):
    cam = {"id": "c0", "width": 640, "height": 480, "intrinsics": [500, 500, 320, 240, 0, 0, 0, 0, 0],
           "orientation": [1, 0, 0, 0], "translation": [0, 0, -3000]}
    p = tmp_path / "cams.json"
    p.write_text(json.dumps({"S1": [cam]}))
    cams = C.load_camera_json(str(p))
    np.testing.assert_allclose(cams["S1"][0].translation, [0, 0, -3.0])
    np.testing.assert_allclose(cams["S1"][0].world_to_camera(np.zeros((1, 3))), [[0, 0, 3.0]])
    del cam["intrinsics"]
    p.write_text(json.dumps({"S1": [cam]}))
    with pytest.raises(ValueError, match="lacks"):
        C.load_camera_json(str(p))


def test_load_camera_json_refuses_deep_nesting_and_wrong_shapes(tmp_path):
    p = tmp_path / "deep.json"
    p.write_text("[" * 5000 + "]" * 5000)
    with pytest.raises(ValueError, match="nested"):
        C.load_camera_json(str(p))
    p.write_text(json.dumps({"S1": {"id": "c0"}}))
    with pytest.raises(ValueError, match="list of JSON objects"):
        C.load_camera_json(str(p))
