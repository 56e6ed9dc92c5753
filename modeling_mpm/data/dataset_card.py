"""Dataset cards for prepared pose data sets pushed to the Hub, and the licence warning for ``--public`` pushes of
data derived from licensed releases (Human3.6M, MPI-INF-3DHP, AMASS); only :func:`push_dataset_with_card` is online.
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional

__all__ = ["SOURCES", "licence_warning", "build_dataset_card", "push_dataset_with_card"]


def _restricted(pretty_name: str, license_name: str, license_link: str, note: str, citation: str) -> Dict[str, object]:
    """A source whose own licence restricts redistribution (``--public`` pushes warn)."""
    return {"pretty_name": pretty_name, "license": "other", "license_name": license_name,
            "license_link": license_link, "restricted": True, "note": note, "citation": citation}


#: What a card says per ``mpm prepare`` source: licence metadata, a licence note, the citation,
#: and whether the original licence restricts redistribution (then ``--public`` warns).
SOURCES: Dict[str, Dict[str, object]] = {
    "h36m": _restricted(
        "Human3.6M (MPM sequence layout)", "human3.6m-research-license",
        "http://vision.imar.ro/human3.6m/eula.php",
        "Derived from Human3.6M, released under its own licence for non-commercial research; the "
        "licence does not allow redistribution. Keep derived data private unless the licence holder "
        "permits otherwise.",
        """@article{ionescu2014human36m,
  title   = {Human3.6M: Large Scale Datasets and Predictive Methods for 3D Human Sensing in Natural Environments},
  author  = {Ionescu, Catalin and Papava, Dragos and Olaru, Vlad and Sminchisescu, Cristian},
  journal = {IEEE Transactions on Pattern Analysis and Machine Intelligence},
  volume  = {36}, number = {7}, pages = {1325--1339}, year = {2014}
}"""),
    "3dhp": _restricted(
        "MPI-INF-3DHP (MPM sequence layout)", "mpi-inf-3dhp-license",
        "https://vcai.mpi-inf.mpg.de/3dhp-dataset/",
        "Derived from MPI-INF-3DHP, released by MPI for Informatics for non-commercial research under "
        "its own licence terms, which do not grant redistribution.",
        """@inproceedings{mehta2017monocular,
  title     = {Monocular 3D Human Pose Estimation In The Wild Using Improved CNN Supervision},
  author    = {Mehta, Dushyant and Rhodin, Helge and Casas, Dan and Fua, Pascal and Sotnychenko, Oleksandr and
               Xu, Weipeng and Theobalt, Christian},
  booktitle = {International Conference on 3D Vision (3DV)},
  year      = {2017}
}"""),
    "amass": _restricted(
        "AMASS joints (MPM sequence layout)", "amass-license",
        "https://amass.is.tue.mpg.de/license.html",
        "Derived from AMASS, released for non-commercial scientific research under the AMASS licence, "
        "which does not allow redistribution of the data or derivatives.",
        """@inproceedings{mahmood2019amass,
  title     = {AMASS: Archive of Motion Capture as Surface Shapes},
  author    = {Mahmood, Naureen and Ghorbani, Nima and Troje, Nikolaus F. and Pons-Moll, Gerard and Black, Michael J.},
  booktitle = {International Conference on Computer Vision (ICCV)},
  year      = {2019}
}"""),
    "bvh": {"pretty_name": "Motion capture (MPM sequence layout)", "license": "other",
            "license_name": "source-licence", "restricted": False, "citation": "",
            "note": "Converted from BVH / joint files given by the user; the licence of those files applies. The CMU "
                    "Graphics Lab Motion Capture Database asks for the credit: 'The data used in this project was "
                    "obtained from mocap.cs.cmu.edu. The database was created with funding from NSF EIA-0196217.'"},
    "demo": {"pretty_name": "MPM demo motion", "license": "apache-2.0", "restricted": False, "citation": "",
             "note": "The package's demo data (CMU mocap takes and climbing captures, see DATA_NOTES.md). The data "
                     "used in this project was obtained from mocap.cs.cmu.edu. The database was created with funding "
                     "from NSF EIA-0196217."},
}
SOURCES["mocap"] = SOURCES["bvh"]

_MPM_CITATION = """@article{zhang2023mpm,
  title   = {MPM: A Unified 2D-3D Human Pose Representation via Masked Pose Modeling},
  author  = {Zhang, Zhenyu and Chai, Wenhao and Jiang, Zhongyu and Ye, Tian and Song, Mingli and \
Hwang, Jenq-Neng and Wang, Gaoang},
  journal = {arXiv preprint arXiv:2306.17201},
  year    = {2023}
}"""


def licence_warning(source: str) -> Optional[str]:
    """The warning for a ``--public`` push of ``source`` data, or None when its licence allows it."""
    info = SOURCES.get(source)
    if info is None or not info["restricted"]:
        return None
    return (f"warning: --public makes this {info['pretty_name']} derivative world-readable. {info['note']} "
            f"See {info.get('license_link', 'the original licence')}. Drop --public to push a private repository.")


def build_dataset_card(source: str, splits: Optional[Mapping[str, int]] = None, repo_id: Optional[str] = None):
    """A :class:`huggingface_hub.DatasetCard` for a prepared ``source`` data set (``splits``: sequences per split)."""
    from huggingface_hub import DatasetCard, DatasetCardData

    if source not in SOURCES:
        raise ValueError(f"source must be one of {sorted(SOURCES)}, got {source!r}")
    info = SOURCES[source]
    meta = dict(license=info["license"], pretty_name=info["pretty_name"],
                tags=["mpm", "3d-human-pose-estimation", "motion-capture", "pose-estimation"],
                task_categories=["other"])
    if info["license"] == "other":
        meta["license_name"] = info["license_name"]
        if info.get("license_link"):
            meta["license_link"] = info["license_link"]
    data = DatasetCardData(**meta)
    rows = "\n".join(f"| {k} | {v} |" for k, v in (splits or {}).items())
    citations = "\n\n".join(c for c in (info["citation"], _MPM_CITATION) if c)
    text = f"""---
{data.to_yaml()}
---

# {info['pretty_name']}

Prepared with `mpm prepare {source}` from the `modeling_mpm` package: one row per sequence, 3D
poses in metres (camera frame, x right, y down, z forward, root-relative where a camera exists),
2D keypoints in pixels, cameras and labels (`sequence`, `subject`, `action`, `camera`).
Load it with `datasets.load_dataset("{repo_id or '<repo id>'}")` and window it with
`modeling_mpm.data.PoseWindowDataset`.

| split | sequences |
|---|---:|
{rows}

## Licence

{info['note']}

## Citation

```bibtex
{citations}
```
"""
    return DatasetCard(text)


def push_dataset_with_card(dataset, repo_id: str, source: str, private: bool = True) -> None:
    """Push ``dataset`` (fails at once when offline) and its dataset card to ``repo_id``."""
    from . import io

    io.push_dataset_to_hub(dataset, repo_id, private=private)
    splits = {k: len(v) for k, v in dataset.items()} if hasattr(dataset, "items") else {"train": len(dataset)}
    build_dataset_card(source, splits, repo_id).push_to_hub(repo_id, repo_type="dataset")
