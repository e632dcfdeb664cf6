"""In-the-Wild: test set, metadata driven, English.

`release_in_the_wild/meta.csv` (header `file,speaker,label`) lists the flat
`<n>.wav` files; label `bona-fide` -> real, `spoof` -> fake (anything else is
reported). Speaker = the celebrity name (free text, quoted in the CSV when it
holds a comma). ID = `ItW-<stem>`.
Differs from the reference: a listed file that is missing is reported and
left out instead of being kept with Duration -1, which breaks loading.
"""
from adf.data.corpora.base import Entry, Skip, read_csv_rows, register, stem

LABELS = {"bona-fide": "real", "spoof": "fake"}


@register("In-the-Wild", "ItW", "In-the-Wild/release_in_the_wild", "test")
def entries(ctx):
    def make(row, where):
        label = LABELS.get(row["label"])
        if label is None:
            return Skip(where, f"label must be bona-fide or spoof (got {row['label']!r})")
        return Entry(ctx.folder / row["file"], stem(row["file"]), label,
                     speaker=row["speaker"] or "-", language="EN")

    yield from read_csv_rows(ctx.meta or ctx.folder / "meta.csv", ["file", "speaker", "label"], make)
