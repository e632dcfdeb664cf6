"""Codecfake by Xie et al.: label-file driven; English and Mandarin.

`label/<train|dev|C7>.txt` (`FILE LABEL CODEC_INDEX`, no header) lists
`<split>/<FILE>`; LABEL is used as is, CODEC_INDEX 0 -> Attack `-`, n ->
`F0n` (other values copied). Splits train/dev/C7 -> train/valid/test; C1-C6
and A1-A3 are not used. Missing audio is reported and dropped.
Differs from the reference: the first line of each label file is kept (read
as a header there, losing it); C7 is found at `C7/` or where the release puts it,
`test/C7/`, so it need not be moved; the corpus is named
`Codecfake-Xie` with prefix `CodecfakeXie`, so it no longer differs from Wu et
al.'s CodecFake by letter case only (`Codecf` vs `CodecF`).
"""
from adf.data.corpora.base import Entry, Skip, read_fields, register, stem

SPLITS = {"train": "train", "dev": "valid", "C7": "test"}


@register("Codecfake-Xie", "CodecfakeXie", "Codecfake", "train", reference_name="Codecfake")
def entries(ctx):
    for split, proportion in SPLITS.items():
        labels = ctx.folder / "label" / f"{split}.txt"
        if not labels.is_file():
            yield Skip(str(labels), "label file not found: this split is left out")
            continue
        audio = ctx.folder / split
        if split == "C7" and not audio.is_dir():
            audio = ctx.folder / "test" / "C7"

        def make(f, where, audio=audio, proportion=proportion):
            name, label, codec = f[:3]
            if label not in ("real", "fake"):
                return Skip(where, f"label must be real or fake (got {label!r})")
            attack = "-" if codec == "0" else f"F{int(codec):02d}" if codec.isdigit() else codec
            return Entry(audio / name, stem(name), label, attack=attack, proportion=proportion)

        yield from read_fields(labels, 3, make)
