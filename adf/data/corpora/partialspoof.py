"""PartialSpoof (Zhang et al., Interspeech 2021 / TASLP 2023): ASVspoof 2019 LA
utterances with spoofed segments spliced into bona fide speech; English.

Layout under `PartialSpoof/database/`: `<train|dev|eval>/con_wav/<UTT>.wav`, the
protocols `protocols/PartialSpoof_LA_cm_protocols/PartialSpoof.LA.cm.<train|dev|eval>.trl.txt`
(`SPEAKER UTT - SYSTEM KEY` as ASVspoof 2019, e.g. `LA_0079 CON_T_0000029 - - spoof`)
and the segment labels `segment_labels/<train|dev|eval>_seglab_<R>.npy` at the
published resolutions R = 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64 s: a
pickled dict {UTT: array of '1' (bona fide) / '0' (spoof) per segment of R
seconds, where a segment is spoof when any part of it is}.
KEY `bonafide` is real, anything else fake (a fully bona fide utterance of
the PartialSpoof protocol has no spoofed segment); Attack = SYSTEM, Speaker
= SPEAKER, Language `EN`; splits train/dev/eval -> train/valid/test.
ID = `PartialSpoof-<UTT>`. `FakeRegions` (docs/data.md) are the runs of
spoof segments of the finest label file present (0.01 s: boundaries within
10 ms, never inside a bona fide stretch); every coarser published resolution
follows from them with the same "any" rule. A fake utterance without
segment labels keeps an empty FakeRegions (fake throughout).
Differs from the published loaders: the label files are pickles, read with
an allow-list (numpy arrays, strings and dicts only), never unpickled
blindly; a file that needs anything else is refused with its name.
"""
import pickle

import numpy as np

from adf.data.corpora.base import Entry, Skip, read_fields, register
from adf.localisation.regions import regions_from_mask

SUBSETS = [("train", "train"), ("dev", "valid"), ("eval", "test")]
RESOLUTIONS = ("0.01", "0.02", "0.04", "0.08", "0.16", "0.32", "0.64")

# What np.save writes for a dict of numpy arrays of strings or numbers (numpy 1.x and 2.x names).
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
}


class _AllowListUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def read_label_dict(path):
    """The {utterance: labels} dict of a PartialSpoof `*_seglab_*.npy`, unpickled with an allow-list."""
    with open(path, "rb") as fh:
        try:
            version = np.lib.format.read_magic(fh)
            if version not in ((1, 0), (2, 0)):
                raise ValueError(f"unsupported .npy version {version}")
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            _shape, _fortran, dtype = read_header(fh)
        except ValueError as err:
            raise ValueError(f"{path}: not a .npy file ({err})") from None
        if not dtype.hasobject:
            raise ValueError(f"{path}: expected a pickled dict of segment labels, found a {dtype} array")
        try:
            obj = _AllowListUnpickler(fh).load()
        except (pickle.UnpicklingError, EOFError, AttributeError, TypeError) as err:
            raise ValueError(f"{path}: unusable segment-label file ({err})") from None
    obj = obj.item() if isinstance(obj, np.ndarray) and obj.shape == () else obj
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a dict of segment labels, found {type(obj).__name__}")
    return obj


def _finest_labels(folder, subset):
    """(resolution, {utt: labels}) of the finest label file present, or (None, {})."""
    for res in RESOLUTIONS:
        path = folder / "segment_labels" / f"{subset}_seglab_{res}.npy"
        if path.is_file():
            return float(res), read_label_dict(path)
    return None, {}


@register("PartialSpoof", "PartialSpoof", "PartialSpoof/database", "none", regions=True)
def entries(ctx):
    for subset, proportion in SUBSETS:
        protocol = (ctx.folder / "protocols" / "PartialSpoof_LA_cm_protocols"
                    / f"PartialSpoof.LA.cm.{subset}.trl.txt")
        if not protocol.is_file():
            yield Skip(str(protocol), "protocol file not found: this subset is left out")
            continue
        resolution, labels = _finest_labels(ctx.folder, subset)
        wav = ctx.folder / subset / "con_wav"

        def make(f, where, wav=wav, proportion=proportion, resolution=resolution, labels=labels):
            speaker, utt, _unused, system, key = f[:5]
            label = "real" if key == "bonafide" else "fake"
            regions = None
            if label == "fake" and utt in labels:
                spoof = np.asarray(labels[utt]).astype(str) == "0"
                regions = regions_from_mask(spoof, resolution)
            return Entry(wav / f"{utt}.wav", utt, label, attack=system, speaker=speaker,
                         proportion=proportion, language="EN", regions=regions)

        yield from read_fields(protocol, 5, make)
