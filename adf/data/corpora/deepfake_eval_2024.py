"""Deepfake-Eval-2024, audio part: fine-tuning / test set, segmented.

Reads the raw release directly: `audio-metadata-publish.csv` (columns
Filename, Ground Truth, Finetuning Set; compared trimmed and lower-cased)
lists `audio-data/<Filename>`. Ground Truth real/fake is the label,
Finetuning Set train/test the Proportion; other values are reported. Every
file is cut into fixed D-second segments (default 4 s; --segment-seconds
10|13|30|50, or 0 for whole files) that tile it, the remainder kept, written
as rows with Start/Stop into the original file. ID = `DFE2024-<stem>_seg<k>`
(`DFE2024-<stem>` for whole files).
Differs from the reference, which has no manifest builder or prefix for it:
no copying into `data/unsegmented/` and no segment audio written, so M4A/MP3
sources need no re-encoding; files libsndfile cannot decode (M4A) are listed
in the skipped report (convert them to WAV to keep them).
"""
from adf.data.corpora.base import Entry, Skip, read_csv_rows, register, stem

TRUTH, SPLIT = "Ground Truth", "Finetuning Set"


@register("Deepfake-Eval-2024", "DFE2024", "Deepfake-Eval-2024", "finetune", segment_seconds=4.0)
def entries(ctx):
    def make(row, where):
        label, split = row[TRUTH].lower(), row[SPLIT].lower()
        if label not in ("real", "fake") or split not in ("train", "test"):
            return Skip(where, f"Ground Truth must be Real|Fake and Finetuning Set Train|Test "
                               f"(got {row[TRUTH]!r}, {row[SPLIT]!r})")
        return Entry(ctx.folder / "audio-data" / row["Filename"], stem(row["Filename"]), label,
                     proportion=split)

    meta = ctx.meta or ctx.folder / "audio-metadata-publish.csv"
    yield from read_csv_rows(meta, ["Filename", TRUTH, SPLIT], make)
