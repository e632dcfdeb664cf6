"""Errors shared across adf: one message that names the file and lists its problems."""


class FileProblems(ValueError):
    """A file that cannot be used; `problems` lists one line per bad row or item."""

    SHOWN = 20  # longer lists are cut in the message (all stay in `problems`)

    def __init__(self, path, problems):
        self.path = str(path)
        self.problems = list(problems)
        shown = "\n  ".join(self.problems[: self.SHOWN])
        more = len(self.problems) - self.SHOWN
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(f"{path}: {len(self.problems)} problem(s):\n  {shown}{tail}")


class UserError(ValueError):
    """A bad option, config or input: reported as one line, exit status 2 (adf.cli)."""


def _user_error_types():
    import yaml

    from adf.checkpoints.files import CheckpointError

    return (ValueError, OSError, CheckpointError, yaml.YAMLError)


def user_error_message(err):
    """The one-line message of a user error, or None when `err` is a bug (show its traceback).
    OSErrors name the file and say what happened, not just "System error"."""
    if isinstance(err, MemoryError):
        return "out of memory"
    if not isinstance(err, _user_error_types()):
        return None
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        return f"{err.filename}: {err.strerror}"
    return str(err) or type(err).__name__
