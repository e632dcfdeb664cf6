"""HAD, Half-truth Audio Detection (Yi et al., Interspeech 2021): Mandarin
utterances (AISHELL-3) with one or a few words replaced by synthesised speech.

Layout under `HAD/`: `HAD_<train|dev|test>/` holding the audio (`.wav`, in
any sub-folder: the release uses `conbine/` for the partially fake clips,
`real/` for the bona fide ones and `test/` in the test set) and the label file
`HAD_<train|dev|test>_label.txt`, one line per clip without a header:
`FILE_ID SEGMENTS LABEL`, e.g.
`HAD_train_fake_00000001 0.00-1.52-T/1.52-2.04-F/2.04-3.20-T 0`. SEGMENTS are
`start-end-T|F` in seconds joined by `/` (T = true speech, F = fake); LABEL 1
= real, 0 = fake. Rows: one per label line whose audio (`FILE_ID.wav`) is
found under the split's folder; `FakeRegions` (docs/data.md) = the F
segments; Language `ZH`; splits train/dev/test -> train/valid/test; ID =
`HAD-<FILE_ID>`. A line whose segments do not parse, or whose LABEL
contradicts its segments (fake without an F segment, real with one), is
reported and left out.
"""
from adf.data.corpora.base import Skip, Entry, read_fields, register, walk

SPLITS = {"train": "train", "dev": "valid", "test": "test"}


def parse_segments(text):
    """`0.00-1.52-T/1.52-2.04-F` -> the fake regions [(1.52, 2.04)]; ValueError when unreadable."""
    fake = []
    for part in text.split("/"):
        bits = part.split("-")
        if len(bits) != 3 or bits[2] not in ("T", "F"):
            raise ValueError(f"segment {part!r} is not start-end-T|F")
        start, end = float(bits[0]), float(bits[1])
        if not 0 <= start < end:
            raise ValueError(f"segment {part!r}: need 0 <= start < end")
        if bits[2] == "F":
            fake.append((start, end))
    return fake


@register("HAD", "HAD", "HAD", "none", regions=True)
def entries(ctx):
    for split, proportion in SPLITS.items():
        top = ctx.folder / f"HAD_{split}"
        labels = top / f"HAD_{split}_label.txt"
        if not labels.is_file():
            yield Skip(str(labels), "label file not found: this split is left out")
            continue
        audio = {p.stem: p for p in walk(top, ".wav")}

        def make(f, where, audio=audio, proportion=proportion, top=top):
            file_id, segments, label = f[:3]
            try:
                fake = parse_segments(segments)
            except ValueError as err:
                return Skip(where, str(err))
            if label not in ("0", "1") or (label == "0") != bool(fake):
                return Skip(where, f"label {label!r} does not agree with the segments {segments!r}")
            return Entry(audio.get(file_id, top / f"{file_id}.wav"), file_id,
                         "fake" if fake else "real", proportion=proportion, language="ZH", regions=fake)

        yield from read_fields(labels, 3, make)
