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
