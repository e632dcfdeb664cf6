"""Scripts in tools/ and recipes/ find the repository's environment by themselves.

They run this file by its path (runpy), before importing adf: the package they
import is the installed one (`pip install -e .`, done by tools/setup_env.sh).

Called directly (`tools/score_eer.py scores.csv`), a script starts under the
first `python3` on PATH, often the system's, which lacks pandas or torch.
`use_repo_environment()` (standard library only, called before any other adf
import) checks that adf's requirements are importable; when they are not it
re-executes the script with `<repo>/.venv/bin/python` (what tools/setup_env.sh
creates), and when there is no such environment it exits with one line
saying how to create it. An environment that has everything (an activated
venv, a conda env with adf installed) is used as it is.
"""
from __future__ import annotations

import importlib.util
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Top-level modules of requirements.txt that the scripts import.
REQUIRED = ("numpy", "pandas", "torch", "torchaudio", "soundfile", "speechbrain", "hyperpyyaml",
            "safetensors", "sklearn", "tqdm")
_GUARD = "ADF_REPO_ENV_REEXEC"  # set on the re-executed process: never loop


def missing_modules(names=REQUIRED):
    return [name for name in names if importlib.util.find_spec(name) is None]


def repo_python():
    return os.path.join(REPO, ".venv", "bin", "python")


def use_repo_environment(names=REQUIRED):
    """Return when `names` import here; else re-exec this script under the
    repository's .venv python, or exit 2 with how to create it. Does nothing
    when the caller is imported rather than run (a test importing a tool)."""
    if sys._getframe(1).f_globals.get("__name__") != "__main__":
        return
    missing = missing_modules((*names, "adf"))  # adf itself: the scripts import the installed package
    if not missing:
        return
    python = repo_python()
    if os.path.exists(python) and not os.environ.get(_GUARD):
        script = os.path.abspath(sys.argv[0])
        os.execve(python, [python, script, *sys.argv[1:]], {**os.environ, _GUARD: "1"})
    where = f"{python} lacks them too" if os.path.exists(python) else f"{python} does not exist"
    sys.stderr.write(f"{os.path.basename(sys.argv[0])}: error: {sys.executable} cannot import "
                     f"{', '.join(missing)} and {where}; create the environment with "
                     f"{os.path.join(REPO, 'tools', 'setup_env.sh')}\n")
    raise SystemExit(2)
