"""The package's one exception base for refused user input (standard library only); ``mpm`` prints it as
``mpm <command>: error: <sentence>`` with exit code 2."""

__all__ = ["MPMInputError"]


class MPMInputError(ValueError):
    """Refused user input (a file, a flag, a setting); the message says what to do."""
