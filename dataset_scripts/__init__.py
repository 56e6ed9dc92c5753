"""Data set preparation behind ``mpm prepare <source>`` (command line: :mod:`modeling_mpm.cli.prepare`).

The conversion functions live in the installed package (:mod:`modeling_mpm.data.sources`) and
are re-exported here lazily (so that ``--help`` stays fast); :func:`build_demo` rebuilds the
embedded demo data set.
"""

__all__ = ["prepare_h36m", "prepare_mpi3dhp", "prepare_amass", "prepare_mocap", "build_demo"]


def __getattr__(name):
    if name == "build_demo":
        from .build_demo import build_demo

        return build_demo
    if name in __all__:
        from modeling_mpm.data import sources

        return getattr(sources, name)
    raise AttributeError(f"module 'dataset_scripts' has no attribute {name!r}")
