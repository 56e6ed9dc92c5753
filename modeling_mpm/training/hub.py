"""Hugging Face Hub ids where the command lines take folders: :func:`resolve_model_dir` (a
``save_pretrained`` folder or a model repo id ``org/name[@revision]``), :func:`load_hub_dataset` (a
dataset repo id for ``data.paths``, read whole with ``datasets``) and :func:`is_repo_id` (an existing
local path always wins). Repos are fetched with ``snapshot_download`` into the Hub cache; with
``HF_HUB_OFFLINE=1`` only the cache is used.
"""

from __future__ import annotations

import os
import re
from typing import Optional, Tuple

__all__ = ["is_repo_id", "split_revision", "resolve_model_dir", "load_hub_dataset"]

_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


def split_revision(spec: str) -> Tuple[str, Optional[str]]:
    """``"org/name@rev"`` -> ``("org/name", "rev")``; no ``@`` -> ``(spec, None)``."""
    if "@" in spec:
        repo, rev = spec.rsplit("@", 1)
        return repo, rev or None
    return spec, None


def is_repo_id(spec: str) -> bool:
    """True when ``spec`` is not an existing path and looks like a Hub repo id (``org/name[@rev]``)."""
    if not isinstance(spec, str) or not spec or os.path.exists(spec):
        return False
    repo, _ = split_revision(spec)
    return repo.count("/") == 1 and bool(_REPO_RE.match(repo)) and not repo.startswith((".", "/"))


def resolve_model_dir(spec: str, what: str = "model") -> str:
    """A local folder holding ``config.json`` for ``spec`` (a folder or a model repo id); ``ValueError``
    naming ``what`` when there is none or the repo cannot be fetched."""
    if os.path.isdir(spec):
        if not os.path.isfile(os.path.join(spec, "config.json")):
            raise ValueError(f"{what}={spec!r} is not a save_pretrained folder (no config.json)")
        return spec
    if not is_repo_id(spec):
        raise ValueError(f"{what}={spec!r} is not a save_pretrained folder (no such folder) "
                         "nor a Hub repo id like 'org/name'")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    repo, revision = split_revision(spec)
    try:
        path = snapshot_download(repo, revision=revision, repo_type="model")
    except LocalEntryNotFoundError as err:
        raise ValueError(f"{what}={spec!r}: no such local folder, and as a Hub model repo id it is not in the "
                         f"local cache and cannot be downloaded (offline mode or no network): {err}") from None
    except (HfHubHTTPError, OSError) as err:
        raise ValueError(f"{what}={spec!r}: cannot fetch the Hub repo ({type(err).__name__}: {err})") from None
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise ValueError(f"{what}={spec!r}: the Hub repo has no config.json (not an MPM model repo)")
    return path


def load_hub_dataset(spec: str):
    """The ``DatasetDict`` of dataset repo ``spec`` (``org/name[@revision]``); ``ValueError`` when it
    cannot be fetched."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    repo, revision = split_revision(spec)
    try:
        folder = snapshot_download(repo, revision=revision, repo_type="dataset")
    except LocalEntryNotFoundError as err:
        raise ValueError(f"data.paths: {spec!r} does not exist as a local folder, and as a Hub dataset repo id "
                         f"it is not in the local cache and cannot be downloaded (offline mode or no network): "
                         f"{err}") from None
    except (HfHubHTTPError, OSError) as err:
        raise ValueError(f"data.paths: cannot fetch dataset repo {spec!r} ({type(err).__name__}: {err})") from None
    if any(os.path.isfile(os.path.join(folder, n)) for n in ("dataset_dict.json", "dataset_info.json")):
        from datasets import load_from_disk

        return load_from_disk(folder)
    from datasets import load_dataset

    try:
        return load_dataset(folder)
    except (ValueError, FileNotFoundError) as err:
        raise ValueError(f"data.paths: dataset repo {spec!r} holds no data files that datasets can read "
                         f"({type(err).__name__}: {err})") from None
