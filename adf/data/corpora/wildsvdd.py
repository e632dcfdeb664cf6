"""WildSVDD: walked FLAC, singing-voice deepfakes; not merged by default.

Layout `WildSVDD/WildSVDD_Data_Sep2024_Processed/<subset>/<mixture|vocals>/<bonafide|deepfake>_<NAME>_<seg>.flac`.
Label from the file name (`bonafide` -> real, `deepfake` -> fake; other names
are reported), Proportion `train` for the train subset, `test` otherwise.
ID = `WildSVDD-<subset>-<mixture|vocals>-<stem>`.
Differs from the reference: Language is `-` (the reference stored the subset
name there; the subset is already in the ID and Proportion).
"""
from adf.data.corpora.base import Entry, Skip, rel_parts, register, stem, walk


@register("WildSVDD", "WildSVDD", "WildSVDD/WildSVDD_Data_Sep2024_Processed", "none")
def entries(ctx):
    for path in walk(ctx.folder, ".flac"):
        parts = rel_parts(path, ctx.folder)
        name = stem(path)
        label = "real" if "bonafide" in name else "fake" if "deepfake" in name else None
        if len(parts) != 3 or label is None:
            yield Skip(str(path), "expected <subset>/<mixture|vocals>/<bonafide|deepfake>_*.flac")
            continue
        yield Entry(path, f"{parts[0]}-{parts[1]}-{name}", label,
                    proportion="train" if parts[0] == "train" else "test")
