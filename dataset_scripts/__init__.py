"""Preparation scripts: ``python -m dataset_scripts.cli <source>`` (also ``mpm prepare``).

The conversion functions live in the installed package (:mod:`modeling_mpm.data.sources`) and
are re-exported here; :func:`build_demo` rebuilds the embedded demo data set.
"""

from modeling_mpm.data.sources import (prepare_amass, prepare_h36m, prepare_mocap,  # noqa: F401
                                       prepare_mpi3dhp)

from .build_demo import build_demo  # noqa: F401

__all__ = ["prepare_h36m", "prepare_mpi3dhp", "prepare_amass", "prepare_mocap", "build_demo"]
