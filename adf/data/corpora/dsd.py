"""DSD, Deepfake Speech Dataset: CSV driven; Korean, English, Japanese.

`DSD_corpus_v1.csv` (header, 15 columns, "Utterence" spelled so) lists the
flat `DSD/<file>.wav` files. Label bonafide -> real, spoof -> fake; subset
train/dev/eval -> train/valid/test; Language Korean/English/Japanese ->
KO/EN/JA (other names copied); Attack = Model, Speaker = Speaker name. ID =
`DSD-<stem>`. Rows with another label or subset are reported.
Differs from the reference: the first data row is kept (the reference skipped
one row after the header); the CSV is looked for in `DSD/` and the data
root (or --meta) instead of the working directory; listed files that
are missing are reported.
"""
from adf.data.corpora.base import Entry, Skip, find_file, read_csv_rows, register, stem

FILE = "Utterence name (file name)"
LABELS = {"bonafide": "real", "spoof": "fake"}
SPLITS = {"train": "train", "dev": "valid", "eval": "test"}
LANGS = {"Korean": "KO", "English": "EN", "Japanese": "JA"}


@register("DSD", "DSD", "DSD", "train")
def entries(ctx):
    meta = find_file(ctx, "DSD protocol", ctx.folder / "DSD_corpus_v1.csv", ctx.root / "DSD_corpus_v1.csv")

    def make(row, where):
        label, split = LABELS.get(row["label"]), SPLITS.get(row["subset"])
        if label is None or split is None:
            return Skip(where, f"unknown label {row['label']!r} or subset {row['subset']!r}")
        return Entry(ctx.folder / row[FILE], stem(row[FILE]), label, attack=row["Model"] or "-",
                     speaker=row["Speaker name"] or "-", proportion=split,
                     language=LANGS.get(row["Language"], row["Language"] or "-"))

    yield from read_csv_rows(meta, [FILE, "Language", "Speaker name", "label", "Model", "subset"], make)
