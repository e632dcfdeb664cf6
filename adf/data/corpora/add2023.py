"""ADD 2023 track 1.2 round 2: test set, label-file driven, Mandarin.

`Track1.2/testR2/label.txt` (`FILE_NAME LABEL`, no header) lists
`wav/<FILE_NAME>`; `genuine` -> real, anything else fake. Proportion `test`.
Differs from the reference: the ID drops the extension (`ADD2023-<stem>`; the
reference kept `.wav`), Language is `ZH` (the content is Mandarin; the
reference wrote `-`), and a listed file that is missing is reported and left
out instead of being kept with Duration -1, which breaks loading.
"""
from adf.data.corpora.base import Entry, read_fields, register, stem


@register("ADD2023", "ADD2023", "ADD2023/Track1.2/testR2", "test")
def entries(ctx):
    def make(f, where):
        name, label = f[:2]
        return Entry(ctx.folder / "wav" / name, stem(name), "real" if label == "genuine" else "fake",
                     proportion="test", language="ZH")

    yield from read_fields(ctx.meta or ctx.folder / "label.txt", 2, make)
