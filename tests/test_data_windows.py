
import numpy as np
import pytest
import torch

from modeling_mpm.cameras import (VirtualCameraSampler, h36m_camera, normalize_screen_coordinates,
                                  project_normalized)
from modeling_mpm.data import (PoseNoise2D, PoseWindowDataset, collate_unpaired, collate_windows,
                               load_dataset_dir, make_row, materialize_camera_sequences, rows_to_dataset,
                               save_dataset, window_indices)
from modeling_mpm.skeleton import H36M_17

torch.set_num_threads(1)


def camera_sequence(T=30, seed=0, subject="S1", cam_index=0):
    """A format-exact camera-frame sequence whose 2D is the GT projection of its 3D."""
    rng = np.random.default_rng(seed)
    cam = h36m_camera(subject, cam_index)
    world = rng.normal(0, 0.3, size=(T, 17, 3)) + np.array([0.0, 0.0, 1.0])
    p3 = cam.world_to_camera(world)
    return {"pose_3d": p3.astype(np.float32), "pose_2d": cam.project(p3).astype(np.float32),
            "pose_2d_units": "pixels", "image_size": cam.image_size, "intrinsics": cam.intrinsics,
            "coordinate_frame": "camera"}


def world_sequence(T=40, seed=0):
    rng = np.random.default_rng(seed)
    base = np.zeros((17, 3))
    base[:, 2] = np.linspace(0.1, 1.7, 17)
    base[H36M_17.joints_left, 0] = 0.15
    base[H36M_17.joints_right, 0] = -0.15
    walk = np.cumsum(rng.normal(0, 0.01, size=(T, 1, 3)), axis=0)
    return {"pose_3d": (base + walk).astype(np.float32), "coordinate_frame": "world"}


@pytest.mark.parametrize("T, F, tds", [(5, 9, 1), (5, 9, 2), (40, 27, 2), (3, 243, 2), (100, 1, 1)])
def test_window_indices_equal_both_sided_edge_pad(T, F, tds):
    pad = (F - 1) // 2
    padded = np.pad(np.arange(T), (pad * tds, pad * tds), mode="edge")
    for c in range(T):
        expected = padded[c: c + 2 * pad * tds + 1: tds]
        np.testing.assert_array_equal(window_indices(c, F, T, tds), expected)
        assert window_indices(c, F, T, tds)[pad] == c


def test_paired_items_normalised_and_root_relative():
    seq = camera_sequence()
    ds = PoseWindowDataset([seq], num_frames=9, tds=2, mode="paired")
    assert len(ds) == 30
    item = ds[4]
    assert set(item) >= {"pose_2d", "pose_3d", "confidence", "intrinsics", "has_2d", "has_3d", "root_3d"}
    assert item["pose_2d"].shape == (9, 17, 2) and item["pose_3d"].shape == (9, 17, 3)
    assert item["pose_2d"].dtype == torch.float32 and item["intrinsics"].shape == (9,)
    idx = window_indices(4, 9, 30, 2)
    w, h = seq["image_size"]
    np.testing.assert_allclose(item["pose_2d"].numpy(), normalize_screen_coordinates(seq["pose_2d"][idx], w, h), atol=1e-6)
    p3 = seq["pose_3d"][idx]
    np.testing.assert_allclose(item["pose_3d"].numpy(), p3 - p3[:, :1], atol=1e-6)
    assert (item["pose_3d"][:, 0] == 0).all()
    np.testing.assert_allclose(item["root_3d"].numpy(), p3[:, 0], atol=1e-6)
    # 2D is the projection of root + root-relative 3D with the normalised intrinsics
    proj = project_normalized(item["pose_3d"].numpy() + item["root_3d"].numpy()[:, None], item["intrinsics"].numpy())
    np.testing.assert_allclose(proj, item["pose_2d"].numpy(), atol=1e-4)
    assert bool(item["has_2d"]) and bool(item["has_3d"]) and not bool(item["flipped"])
    assert (item["confidence"] == 1).all()


def test_flip_mirrors_pose_and_camera_consistently():
    seq = camera_sequence(seed=3)
    plain = PoseWindowDataset([seq], num_frames=5, flip_prob=0.0)[7]
    item = PoseWindowDataset([seq], num_frames=5, flip_prob=1.0)[7]
    assert bool(item["flipped"])
    perm = H36M_17.flip_permutation
    np.testing.assert_allclose(item["pose_2d"].numpy(), plain["pose_2d"].numpy()[:, perm] * [-1, 1], atol=1e-6)
    np.testing.assert_allclose(item["pose_3d"].numpy(), plain["pose_3d"].numpy()[:, perm] * [-1, 1, 1], atol=1e-6)
    k = plain["intrinsics"].numpy().copy()
    k[[2, 7]] *= -1
    np.testing.assert_allclose(item["intrinsics"].numpy(), k)
    # the flipped 3D seen by the flipped camera gives the flipped 2D
    proj = project_normalized(item["pose_3d"].numpy() + item["root_3d"].numpy()[:, None], item["intrinsics"].numpy())
    np.testing.assert_allclose(proj, item["pose_2d"].numpy(), atol=1e-4)


def test_unpaired_mode_and_collate():
    seqs = [camera_sequence(T=10), camera_sequence(T=6, seed=1)]
    ds = PoseWindowDataset(seqs, num_frames=7, mode="unpaired")
    assert len(ds) == 2 * 16
    kinds = [(bool(ds[i]["has_2d"]), bool(ds[i]["has_3d"])) for i in range(4)]
    assert kinds == [(True, False), (False, True), (True, False), (False, True)]
    batch = collate_unpaired([ds[i] for i in range(5)])
    assert batch["pose_2d"].shape == (3, 7, 17, 2) and batch["pose_3d"].shape == (2, 7, 17, 3)
    assert batch["intrinsics_2d"].shape == (3, 9) and batch["confidence"].shape == (3, 7, 17)
    assert batch["index_2d"].tolist() == [0, 2, 4] and batch["index_3d"].tolist() == [1, 3]
    only2d = collate_unpaired([ds[0], ds[2]])
    assert only2d["pose_3d"].shape == (0, 7, 17, 3) and only2d["root_3d"].shape == (0, 7, 3)
    paired = collate_windows([PoseWindowDataset(seqs, num_frames=7)[i] for i in range(3)])
    assert paired["pose_2d"].shape == (3, 7, 17, 2) and paired["has_3d"].all()
    assert len(PoseWindowDataset(seqs, num_frames=7, mode="2d")) == 16
    assert len(PoseWindowDataset(seqs, num_frames=7, mode="3d", stride=3)) == 4 + 2


def test_world_sequences_use_virtual_cameras():
    seq = world_sequence()
    ds = PoseWindowDataset([seq], num_frames=11, mode="paired", seed=5)
    a, b = ds[3], ds[3]
    # one random camera per draw, reproducible per seed
    assert not torch.equal(a["pose_2d"], b["pose_2d"])
    again = PoseWindowDataset([seq], num_frames=11, mode="paired", seed=5)
    assert torch.equal(again[3]["pose_2d"], a["pose_2d"])
    for item in (a, b):
        cam3d = item["pose_3d"].numpy() + item["root_3d"].numpy()[:, None]
        assert (cam3d[..., 2] > 2.0).all()  # in front of the camera
        proj = project_normalized(cam3d, item["intrinsics"].numpy())
        np.testing.assert_allclose(proj, item["pose_2d"].numpy(), atol=1e-5)
        # the world up axis points up in the image: head (top of the list) above the pelvis
        assert (item["pose_2d"][:, 16, 1] < item["pose_2d"][:, 0, 1]).all()
        # bone lengths are preserved by the camera transform
        world = seq["pose_3d"][window_indices(3, 11, 40)]
        np.testing.assert_allclose(np.linalg.norm(cam3d[:, 5] - cam3d[:, 4], axis=-1),
                                   np.linalg.norm(world[:, 5] - world[:, 4], axis=-1), atol=1e-5)
    ds.set_epoch(1)
    assert not torch.equal(ds[3]["pose_2d"], again[3]["pose_2d"])


def test_fixed_virtual_cameras_are_deterministic():
    cams = VirtualCameraSampler().fixed(4)
    seqs = [world_sequence(seed=1)]
    ds1 = PoseWindowDataset(seqs, num_frames=9, virtual_cameras=cams, stride=4)
    ds2 = PoseWindowDataset(seqs, num_frames=9, virtual_cameras=cams, stride=4, seed=99)
    assert len(ds1) == 10 * 4
    for i in range(len(ds1)):
        assert torch.equal(ds1[i]["pose_2d"], ds2[i]["pose_2d"])
    assert sorted({int(ds1[i]["camera_index"]) for i in range(len(ds1))}) == [0, 1, 2, 3]
    full = materialize_camera_sequences(seqs, cams)
    assert len(full) == 4 and full[0]["pose_2d"].shape == (40, 17, 2)
    assert (full[1]["pose_3d"][:, 0] == 0).all()
    # a window of the materialised sequence has the same root-relative 3D as the window dataset
    item = ds1[4 * 2 + 0] if int(ds1[8]["camera_index"]) == 0 else None
    assert item is not None
    c = int(item["center_frame"])
    np.testing.assert_allclose(item["pose_3d"].numpy(), full[0]["pose_3d"][window_indices(c, 9, 40)], atol=1e-5)


def test_noise_model_and_dropped_joints():
    seq = camera_sequence()
    clean = PoseWindowDataset([seq], num_frames=5)[3]
    noisy = PoseWindowDataset([seq], num_frames=5, noise_2d=PoseNoise2D(std=0.01))[3]
    diff = (noisy["pose_2d"] - clean["pose_2d"]).numpy()
    assert 0.005 < diff.std() < 0.02
    torch.testing.assert_close(noisy["pose_3d"], clean["pose_3d"])
    dropped = PoseWindowDataset([seq], num_frames=5, noise_2d=PoseNoise2D(std=0.0, drop_prob=1.0))[3]
    assert (dropped["confidence"] == 0).all() and (dropped["pose_2d"] == 0).all()
    half = PoseWindowDataset([seq], num_frames=243, noise_2d=PoseNoise2D(std=0.0, drop_prob=0.3))[3]
    frac = 1 - half["confidence"].mean().item()
    assert 0.25 < frac < 0.35
    assert (half["pose_2d"][half["confidence"] == 0] == 0).all()


def test_valid_only_and_frame_valid():
    seq = camera_sequence(T=12)
    seq["valid"] = np.array([0, 1] * 6, bool)
    ds = PoseWindowDataset([seq], num_frames=3, valid_only=True)
    assert len(ds) == 6 and all(int(ds[i]["center_frame"]) % 2 == 1 for i in range(6))
    assert ds[0]["frame_valid"].tolist() == [False, True, False]


def test_bad_input_is_rejected():
    seq = camera_sequence()
    with pytest.raises(ValueError, match=r"pose_3d must be \(T, 16, 3\)"):
        PoseWindowDataset([seq], skeleton="h36m16")
    with pytest.raises(ValueError, match="mode must be one of"):
        PoseWindowDataset([seq], mode="both")
    bad = dict(seq, pose_2d=seq["pose_2d"][:5])
    with pytest.raises(ValueError, match="pose_2d has 5 frames"):
        PoseWindowDataset([bad])
    with pytest.raises(ValueError, match="positive image_size"):
        PoseWindowDataset([dict(seq, image_size=(0, 0))])
    with pytest.raises(TypeError):
        PoseWindowDataset([seq], virtual_cameras=["cam"])
    with pytest.raises(IndexError):
        PoseWindowDataset([seq], num_frames=3)[30]


def test_from_saved_dataset_parquet_and_arrow(tmp_path):
    seqs = [camera_sequence(T=8), camera_sequence(T=5, seed=2, cam_index=1)]
    rows = [make_row(sequence=f"s{i}", source="test", pose_3d=s["pose_3d"], pose_2d=s["pose_2d"],
                     pose_2d_units="pixels", fps=50, skeleton="h36m17", coordinate_frame="camera",
                     image_size=s["image_size"], intrinsics=s["intrinsics"]) for i, s in enumerate(seqs)]
    ds = rows_to_dataset(rows)
    from datasets import DatasetDict
    for fmt in ("arrow", "parquet"):
        out = save_dataset(DatasetDict({"train": ds}), tmp_path / fmt, format=fmt)
        loaded = load_dataset_dir(out)["train"]
        assert loaded.features["pose_3d"].shape == (None, 17, 3)
        wd = PoseWindowDataset.from_dataset(loaded, num_frames=5)
        assert len(wd) == 13
        ref = PoseWindowDataset(seqs, num_frames=5)
        for i in (0, 9, 12):
            torch.testing.assert_close(wd[i]["pose_2d"], ref[i]["pose_2d"])
            torch.testing.assert_close(wd[i]["pose_3d"], ref[i]["pose_3d"])
    with pytest.raises(FileExistsError):
        save_dataset(DatasetDict({"train": ds}), tmp_path / "arrow")
    save_dataset(DatasetDict({"train": ds.select([0])}), tmp_path / "arrow", overwrite=True)
    assert len(load_dataset_dir(tmp_path / "arrow")["train"]) == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_dataloader_with_workers_is_seeded_per_worker():
    ds = PoseWindowDataset([world_sequence()], num_frames=5, seed=3)
    loader = torch.utils.data.DataLoader(ds, batch_size=8, num_workers=2, collate_fn=collate_windows)
    a = torch.cat([b["pose_2d"] for b in loader])
    b = torch.cat([b["pose_2d"] for b in loader])
    torch.testing.assert_close(a, b)
    assert a.shape == (40, 5, 17, 2)


def mixed_dataset(**kw):
    seqs = [camera_sequence(T=20, seed=0), world_sequence(T=30, seed=1), camera_sequence(T=15, seed=2, cam_index=3)]
    return PoseWindowDataset(seqs, num_frames=9, tds=2, **kw)


def test_batched_fetch_is_consistent_with_flips_and_mixed_sources():
    ds = mixed_dataset(flip_prob=0.5, seed=4)
    idx = np.random.default_rng(0).permutation(len(ds))[:40]
    b = ds.get_batch(idx)
    np.testing.assert_array_equal(b["sequence_index"], ds._seq[idx])
    np.testing.assert_array_equal(b["center_frame"], ds._center[idx])
    assert 5 < b["flipped"].sum() < 35
    cam3d = b["pose_3d"] + b["root_3d"][:, :, None]
    proj = project_normalized(cam3d, b["intrinsics"][:, None, None, :])
    np.testing.assert_allclose(proj, b["pose_2d"], atol=1e-4)
    assert (b["pose_3d"][:, :, 0] == 0).all()
    # un-flipped camera-frame rows equal the direct per-window computation
    ref = PoseWindowDataset([camera_sequence(T=20, seed=0)], num_frames=9, tds=2)
    for r in np.flatnonzero((b["sequence_index"] == 0) & ~b["flipped"]):
        np.testing.assert_allclose(b["pose_2d"][r], ref[int(b["center_frame"][r])]["pose_2d"].numpy(), atol=1e-6)
    # flipped camera-frame rows are the mirror of the un-flipped window
    for r in np.flatnonzero((b["sequence_index"] == 0) & b["flipped"]):
        plain = ref[int(b["center_frame"][r])]["pose_3d"].numpy()
        np.testing.assert_allclose(b["pose_3d"][r], plain[:, H36M_17.flip_permutation] * [-1, 1, 1], atol=1e-6)


def test_unpaired_batch_layouts_agree():
    cams = VirtualCameraSampler().fixed(2)
    ds = mixed_dataset(mode="unpaired", virtual_cameras=cams)
    idx = np.arange(len(ds))[::3]
    fast = ds.get_unpaired_batch(idx)
    slow = collate_unpaired([ds[int(i)] for i in idx])
    # rows are grouped in the fast layout: compare after sorting by input position
    for key2 in ("pose_2d", "confidence", "intrinsics_2d"):
        o = np.argsort(fast["index_2d"])
        np.testing.assert_allclose(fast[key2][o], slow[key2].numpy(), atol=1e-5)
    for key3 in ("pose_3d", "root_3d", "intrinsics_3d"):
        o = np.argsort(fast["index_3d"])
        np.testing.assert_allclose(fast[key3][o], slow[key3].numpy(), atol=1e-5)
    np.testing.assert_array_equal(np.sort(fast["index_2d"]), slow["index_2d"].numpy())
    # the DataLoader path (lazy WindowBatch + our collate) gives the same sub-batches
    loader = torch.utils.data.DataLoader(ds, batch_size=len(ds), shuffle=False, collate_fn=collate_unpaired)
    full = next(iter(loader))
    assert full["pose_2d"].shape[0] + full["pose_3d"].shape[0] == len(ds)
    batches = list(ds.iter_batches(16, shuffle=True))
    assert sum(len(x["index_2d"]) + len(x["index_3d"]) for x in batches) == len(ds)
    # default torch collate also works on the lazy batch (item by item)
    plain = next(iter(torch.utils.data.DataLoader(mixed_dataset(), batch_size=4)))
    assert plain["pose_2d"].shape == (4, 9, 17, 2)
