"""Audio already in memory (numpy arrays or tensors), scored exactly like files.

An `ArrayAudio` stands where a file would: the scoring engine
(adf.inference) asks it for its length and rate instead of reading a header,
and for a native-rate sample range as mono 16 kHz (adf.audio.to_16k, the
function `load_16k` applies to decoded files). So an array holding what
soundfile decodes from a file gets the file's scores, windows included.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from adf.audio import AudioError, to_16k

PCM_SCALE = {np.dtype(np.int16): 32768.0, np.dtype(np.int32): 2147483648.0}


@dataclass(frozen=True, eq=False)
class ArrayAudio:
    """`samples` [channels, frames] float32 at `rate` Hz; `name` stands for a path in messages."""

    samples: torch.Tensor
    rate: int
    name: str

    @classmethod
    def from_array(cls, array, rate, name):
        """From a 1-D array [frames] or a 2-D one [frames, channels] (soundfile's layout),
        numpy or torch, of any real dtype; AudioError naming `name` when it is not audio."""
        if isinstance(array, torch.Tensor):
            array = array.detach().cpu().numpy()
        array = np.asarray(array)
        if array.dtype.kind != "f" and array.dtype not in PCM_SCALE or array.ndim not in (1, 2):
            raise AudioError(name, "not audio: expected a 1-D [samples] or 2-D [samples, channels] array of "
                                   f"floats, int16 or int32, got shape {array.shape} of {array.dtype}")
        if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
            raise AudioError(name, f"sample rate must be a positive integer number of Hz (got {rate!r})")
        frames = array if array.ndim == 2 else array[:, None]
        samples = np.ascontiguousarray(frames.T, dtype=np.float32)
        if array.dtype in PCM_SCALE:  # full scale -> 1.0, as soundfile reads PCM as float
            samples /= PCM_SCALE[array.dtype]
        return cls(torch.from_numpy(samples), int(rate), name)

    @property
    def frames(self):
        return self.samples.shape[-1]

    def check(self):
        """AudioError when the array holds no samples or non-finite ones (as a file's would be)."""
        if self.frames == 0 or self.samples.shape[0] == 0:
            raise AudioError(self.name, "contains no audio samples")
        if not bool(torch.isfinite(self.samples).all()):
            raise AudioError(self.name, "contains NaN or infinite samples")

    def read_16k(self, start=0, stop=None):
        """Mono 16 kHz waveform [T] of native samples [start, stop)."""
        return to_16k(self.samples[:, start:stop], self.rate)
