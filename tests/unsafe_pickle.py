"""A pickled object that runs code when unpickled: the stand-in for a crafted file in the tests that
prove the package reads files as plain data (checkpoints, npz dicts, official checkpoints)."""


class RunsCodeWhenUnpickled:
    """Unpickling this calls ``open(marker, "w")``: the marker file appears only if a loader ran the
    pickled code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))
