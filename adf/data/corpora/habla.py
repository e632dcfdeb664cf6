"""HABLA: walked, Latin-American Spanish.

Layout `HABLA/FinalDataset_16khz/<system>/<country or pair>/<speaker>/<file>.wav`;
system `Real` is real, every other system fake. Attack = the system folder
(`Real` for reals, as in the reference), Speaker = the third-level folder.
ID = `HABLA-<label>-<stem>`, Language `ES`.
Differs from the reference: an unreadable file is reported and skipped
instead of aborting the whole run.
"""
from adf.data.corpora.base import Entry, rel_parts, register, stem, walk


@register("HABLA", "HABLA", "HABLA/FinalDataset_16khz", "train")
def entries(ctx):
    for path in walk(ctx.folder, ".wav"):
        parts = rel_parts(path, ctx.folder)
        label = "real" if parts[0] == "Real" else "fake"
        yield Entry(path, f"{label}-{stem(path)}", label, attack=parts[0] if len(parts) > 1 else "-",
                    speaker=parts[2] if len(parts) > 3 else "-", language="ES")
