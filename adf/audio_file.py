"""Audio files as files: which names count as audio, finding them under a
folder, and the checks of a file and its header before anything is decoded.

One home for what `adf detect` (folder inputs, probing), the manifest builder
(adf.data.audio_info, header columns) and the corpus preparers (file walks)
share. No torch here: header probing runs in worker processes that must start
fast.
"""
from __future__ import annotations

import os
import re
import stat

import soundfile as sf

# Extensions a folder walk picks up (case-insensitive): what libsndfile reads.
AUDIO_EXTENSIONS = frozenset({
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc",
    ".au", ".snd", ".caf", ".w64", ".rf64", ".sph", ".nist", ".voc", ".htk", ".sd2", ".paf",
})


def walk(top, exts=AUDIO_EXTENSIONS):
    """Every file under `top` whose extension (case-insensitive) is one of
    `exts`, sorted, as paths joined onto `top` as given. A missing folder
    gives an empty list."""
    exts = {e.lower() for e in exts}
    found = []
    for dirpath, _dirs, files in os.walk(top):
        found.extend(os.path.join(dirpath, name) for name in files if os.path.splitext(name)[1].lower() in exts)
    return sorted(found)


class AudioError(ValueError):
    """An audio file that cannot be used; the message names the file and the problem."""

    def __init__(self, path, problem):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def check_file(path):
    """The problems a path can have before any decoding, as an AudioError."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise AudioError(path, "file does not exist") from None
    except OSError as err:
        raise AudioError(path, f"cannot be read ({err.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise AudioError(path, "is a directory, not an audio file")
    if not stat.S_ISREG(st.st_mode):  # a FIFO or device would block or never end
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else "not a regular file"
        raise AudioError(path, f"is {kind}, not an audio file")
    if st.st_size == 0:
        raise AudioError(path, "file is empty (0 bytes)")
    if not os.access(path, os.R_OK):
        raise AudioError(path, "permission denied (not readable)")


# libsndfile's log notes a chunk whose declared size the file does not hold:
# "data : 32000 (should be 15978)". 0xFFFFFFFF and 0 are the placeholders of
# files written to a pipe, not truncation.
_DECLARED = re.compile(r"^(?:data|SSND) : (\d+) \(should be (\d+)\)", re.M)


def _truncation(info):
    for declared, present in _DECLARED.findall(info.extra_info or ""):
        declared, present = int(declared), int(present)
        if present < declared < 0xFFFFFFF0:
            return f"truncated: its header declares {declared} bytes of audio, the file holds {present}"
    return None


def audio_header(path):
    """soundfile's header info of `path`; AudioError when it cannot be read, holds
    no samples or is shorter than its header says."""
    check_file(path)
    try:
        info = sf.info(path)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioError(path, f"cannot decode audio ({err})") from None
    if info.frames <= 0:
        raise AudioError(path, "contains no audio samples")
    problem = _truncation(info)
    if problem:
        raise AudioError(path, problem)
    return info
