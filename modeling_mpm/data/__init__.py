"""Pose data: converters (Human3.6M, MPI-INF-3DHP, AMASS, BVH / motion capture), the
one-row-per-sequence on-disk format, training windows and the embedded demo data set.

See docs/data.md for the formats and the item keys of :class:`PoseWindowDataset`.
"""

from .augment import AUGMENT_PRESETS, DetectorNoise2D, MotionAugment, augment_from_config, wide_camera_sampler
from .bvh import BVHJoint, BVHMotion, parse_bvh, read_bvh
from .demo import (DEMO_VALIDATION_CAMERAS, DEMO_VALIDATION_SEQUENCES, demo_validation_sequences,
                   demo_window_datasets, load_demo_dataset)
from .io import (HubOfflineError, load_dataset_dir, load_sequences, make_row, push_dataset_to_hub,
                 rows_to_dataset, save_dataset, sequence_features)
from .mocap import (CMU_BVH_TO_H36M17, HOLOSOMA_TO_H36M17, SMPL_TO_H36M17, load_bvh_h36m17,
                    load_climb_npy, map_joints_by_name, resample, y_up_to_z_up)
from .sources import (H36M_TEST_SUBJECTS, H36M_TRAIN_SUBJECTS, amass_authors_rows, amass_joints_rows,
                      h36m_rows, mocap_rows, mpi3dhp_test_rows, mpi3dhp_train_rows, prepare_amass,
                      prepare_h36m, prepare_mocap, prepare_mpi3dhp)
from .windows import (PoseNoise2D, PoseWindowDataset, WindowBatch, collate_unpaired, collate_windows,
                      materialize_camera_sequences, window_indices)

__all__ = [
    "AUGMENT_PRESETS", "DetectorNoise2D", "MotionAugment", "augment_from_config", "wide_camera_sampler",
    "BVHJoint", "BVHMotion", "parse_bvh", "read_bvh",
    "DEMO_VALIDATION_CAMERAS", "DEMO_VALIDATION_SEQUENCES", "demo_validation_sequences", "demo_window_datasets",
    "load_demo_dataset",
    "HubOfflineError", "load_dataset_dir", "load_sequences", "make_row", "push_dataset_to_hub",
    "rows_to_dataset", "save_dataset", "sequence_features",
    "CMU_BVH_TO_H36M17", "HOLOSOMA_TO_H36M17", "SMPL_TO_H36M17", "load_bvh_h36m17", "load_climb_npy",
    "map_joints_by_name", "resample", "y_up_to_z_up",
    "H36M_TEST_SUBJECTS", "H36M_TRAIN_SUBJECTS", "amass_authors_rows", "amass_joints_rows", "h36m_rows",
    "mocap_rows", "mpi3dhp_test_rows", "mpi3dhp_train_rows", "prepare_amass", "prepare_h36m", "prepare_mocap",
    "prepare_mpi3dhp",
    "PoseNoise2D", "PoseWindowDataset", "WindowBatch", "collate_unpaired", "collate_windows",
    "materialize_camera_sequences", "window_indices",
]
