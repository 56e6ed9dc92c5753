"""Console entry point of ``mpm`` (``[project.scripts]``).

``import modeling_mpm`` registers the model with transformers, which imports torch (seconds).
The dispatcher ``modeling_mpm/cli/__init__.py`` needs none of that, so this module runs it without
executing the package ``__init__``: ``mpm --help`` / ``mpm --version`` stay fast, and a
sub-command imports its own module (and with it the package) only when it runs.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import List, Optional

__all__ = ["main", "load_dispatcher"]


def load_dispatcher():
    """The ``modeling_mpm.cli`` dispatcher, loaded from its file (``modeling_mpm/cli/__init__.py``)
    when the package is not imported yet."""
    if "modeling_mpm.cli" in sys.modules:
        return sys.modules["modeling_mpm.cli"]
    if "modeling_mpm_cli._dispatcher" in sys.modules:
        return sys.modules["modeling_mpm_cli._dispatcher"]
    spec = importlib.util.find_spec("modeling_mpm")  # locates the package, runs nothing
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the modeling_mpm package is not importable")
    path = os.path.join(list(spec.submodule_search_locations)[0], "cli", "__init__.py")
    cli_spec = importlib.util.spec_from_file_location("modeling_mpm_cli._dispatcher", path)
    module = importlib.util.module_from_spec(cli_spec)
    sys.modules[cli_spec.name] = module
    cli_spec.loader.exec_module(module)
    return module


def main(argv: Optional[List[str]] = None) -> int:
    try:
        return load_dispatcher().main(argv)
    except BrokenPipeError:  # `mpm --help | head`: the reader left; no traceback
        sys.stdout = open(os.devnull, "w")
        return 141


if __name__ == "__main__":
    sys.exit(main())
