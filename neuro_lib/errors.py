"""The one exception type for bad user input.

CLI commands catch `NeuroError`, print its message as one sentence and exit non-zero;
anything else is a bug and keeps its traceback.
"""


class NeuroError(Exception):
    """A user-facing error: bad input, missing file, mismatched checkpoint."""
