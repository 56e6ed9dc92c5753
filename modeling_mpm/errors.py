"""The package's one exception base for refused user input (standard library only).

:class:`MPMInputError` is a ``ValueError``: a file, flag or setting the package refuses, with a
sentence saying what is wrong and what to do. ``modeling_mpm.cli.main`` prints it as
``mpm <command>: error: <sentence>`` with exit code 2 (see ``modeling_mpm/cli/__init__.py``).
"""

__all__ = ["MPMInputError"]


class MPMInputError(ValueError):
    """Refused user input (a file, a flag, a setting); the message says what to do."""
