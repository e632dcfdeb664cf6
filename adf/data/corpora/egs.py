"""egs: the project's embedded example corpus (egs_data/).

`egs_data/metadata.csv` has the columns file,label,speaker,split,source,attack,
language; `file` is relative to the egs root, which is the data root itself
(`adf prepare egs --root egs_data`; without --root, `egs_data/` is looked
for in the working directory and the folders above it). Split train|valid|test is
the Proportion (`dev` is read as valid). ID = `EGS-<file without extension,
'/' replaced by '_'>`, so files of the same name in different folders stay
distinct.
"""
from adf.data.corpora.base import Entry, Skip, read_csv_rows, register

SPLITS = {"train": "train", "valid": "valid", "dev": "valid", "test": "test"}


@register("egs", "EGS", "", "example")
def entries(ctx):
    def make(row, where):
        label, split = row["label"].lower(), row["split"].lower()
        if label not in ("real", "fake") or split not in SPLITS:
            return Skip(where, f"label must be real|fake and split train|valid|test "
                               f"(got {row['label']!r}, {row['split']!r})")
        rel = row["file"]
        return Entry(ctx.folder / rel, rel.rsplit(".", 1)[0].replace("/", "_"), label,
                     attack=row.get("attack") or "-", speaker=row.get("speaker") or "-",
                     proportion=SPLITS[split], language=(row.get("language") or "-").upper())

    yield from read_csv_rows(ctx.meta or ctx.folder / "metadata.csv", ["file", "label", "split"], make)
