"""DECRO: protocol driven, Chinese and English.

Protocols `<ch|en>_<train|dev|eval>.txt` (`SPEAKER FILE_ID - SYSTEM_OR_SOURCE
KEY`) sit next to the audio folders `<subset>/<FILE_ID>.wav`. ID =
`DECRO-<proportion>-<ZH|EN>-<FILE_ID>`, Attack = column 4 (generator, or the
source corpus for bona fide), Speaker = column 1. Missing audio is reported.
Differs from the reference: lines are trimmed before splitting (stray
trailing spaces made empty fields), and the snapshot folder under `DECRO/` is
found by its protocol files instead of being fixed to one archive name.
"""
from adf.data.corpora.base import Entry, Skip, read_fields, register

SPLITS = {"train": "train", "dev": "valid", "eval": "test"}
LANGS = {"ch": "ZH", "en": "EN"}


def _base(folder):
    """The folder holding the protocols: DECRO/ itself or its one snapshot folder."""
    if any(folder.glob("*_train.txt")):
        return folder
    found = sorted(d for d in folder.iterdir() if d.is_dir() and any(d.glob("*_train.txt")))
    return found[0] if found else folder


@register("DECRO", "DECRO", "DECRO", "train")
def entries(ctx):
    base = _base(ctx.folder)
    for lang, code in LANGS.items():
        for split, proportion in SPLITS.items():
            subset = f"{lang}_{split}"
            protocol = base / f"{subset}.txt"
            if not protocol.is_file():
                yield Skip(str(protocol), "protocol file not found: this subset is left out")
                continue

            def make(f, where, subset=subset, proportion=proportion, code=code):
                speaker, file_id, _unused, system, key = f[:5]
                return Entry(base / subset / f"{file_id}.wav", f"{proportion}-{code}-{file_id}",
                             "real" if key == "bonafide" else "fake", attack=system,
                             speaker=speaker, proportion=proportion, language=code)

            yield from read_fields(protocol, 5, make)
