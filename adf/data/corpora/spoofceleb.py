"""SpoofCeleb: metadata driven, VoxCeleb1-based.

`metadata/<split>.csv` (header `file,speaker,attack`) lists files relative to
`flac/<split>/`; attack `a00` is bona fide. Splits train/development/
evaluation -> train/valid/test. Attack and Speaker from the CSV, Language `-`.
Missing audio is reported and dropped.
Differs from the reference: the ID replaces the `/` of the file path with `_`
(`SpoofCeleb-a00_id10318_YYsxcZ5saac-00002-006`), so IDs are safe as file
names and keys.
"""
from adf.data.corpora.base import Entry, Skip, read_csv_rows, register

SPLITS = {"train": "train", "development": "valid", "evaluation": "test"}


@register("SpoofCeleb", "SpoofCeleb", "SpoofCeleb/spoofceleb", "train")
def entries(ctx):
    for split, proportion in SPLITS.items():
        meta = ctx.folder / "metadata" / f"{split}.csv"
        if not meta.is_file():
            yield Skip(str(meta), "metadata file not found: this split is left out")
            continue

        def make(row, where, split=split, proportion=proportion):
            rel = row["file"]
            file_id = (rel[:-5] if rel.endswith(".flac") else rel).replace("/", "_")
            return Entry(ctx.folder / "flac" / split / rel, file_id,
                         "real" if row["attack"] == "a00" else "fake", attack=row["attack"],
                         speaker=row["speaker"] or "-", proportion=proportion)

        yield from read_csv_rows(meta, ["file", "speaker", "attack"], make)
