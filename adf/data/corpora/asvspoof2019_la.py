"""ASVspoof2019-LA: protocol-driven, VCTK-based, English.

Layout under `ASVspoof2019-LA/LA/`: `ASVspoof2019_LA_<train|dev|eval>/flac/<FILE_ID>.flac`
and the CM protocols `ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.<train.trn|dev.trl|eval.trl>.txt`
(space-separated, no header: `SPEAKER FILE_ID - SYSTEM KEY`, e.g.
`LA_0069 LA_D_1047731 - - bonafide`). KEY `bonafide` is real, anything else
fake; Attack = SYSTEM (`A01`-`A19`, `-` for bona fide), Speaker = SPEAKER,
Language `EN`; the split is the protocol's (train, dev -> valid, eval ->
test). ID = `ASV19LA-<FILE_ID>`. Its dev set also validates the
Deepfake-Eval-2024 fine-tuning (recipes/finetune).
Differs from the reference: a protocol row whose audio is missing is reported
and left out instead of being kept with Duration -1 (it breaks the loader).
"""
from adf.data.corpora.base import Entry, Skip, read_fields, register

SUBSETS = [("train", "train.trn", "train"), ("dev", "dev.trl", "valid"), ("eval", "eval.trl", "test")]


@register("ASVspoof2019-LA", "ASV19LA", "ASVspoof2019-LA/LA", "train")
def entries(ctx):
    for subset, suffix, proportion in SUBSETS:
        protocol = ctx.folder / "ASVspoof2019_LA_cm_protocols" / f"ASVspoof2019.LA.cm.{suffix}.txt"
        if not protocol.is_file():
            yield Skip(str(protocol), "protocol file not found: this subset is left out")
            continue
        flac = ctx.folder / f"ASVspoof2019_LA_{subset}" / "flac"

        def make(f, where, flac=flac, proportion=proportion):
            speaker, file_id, _unused, system, key = f[:5]
            return Entry(flac / f"{file_id}.flac", file_id, "real" if key == "bonafide" else "fake",
                         attack=system, speaker=speaker, proportion=proportion, language="EN")

        yield from read_fields(protocol, 5, make)
