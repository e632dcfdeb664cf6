"""Fake-or-Real, original and normalised versions: test sets.

Layout `FakeOrReal/<for-original|for-norm>/<training|validation|testing>/<real|fake>/<file>.wav|.mp3`.
Label = the class folder, Proportion training/validation/testing ->
train/valid/test (informational: all rows are test data), Language `EN`.
IDs: `FoR-<split folder>-<label>-<stem>` and `FoRnorm-<split folder>-<label>-<stem>`
(FoR-norm stems keep their inner dots, e.g. `file4.wav_16k.wav_norm.wav_mono.wav_silence`).
Differs from the reference: the normalised version has its own name
(`FakeOrReal-norm`) and prefix `FoRnorm`, so the two are scored apart (the
reference used `FoR` for both). Unreadable files (a known bad MP3) are
reported in the skipped list, as the reference's message did.
"""
from adf.data.corpora.base import Entry, Skip, rel_parts, register, stem, walk

SPLITS = {"training": "train", "validation": "valid", "testing": "test"}


def _for_entries(ctx):
    for path in walk(ctx.folder, ".wav", ".mp3"):
        parts = rel_parts(path, ctx.folder)
        if len(parts) != 3 or parts[0] not in SPLITS or parts[1] not in ("real", "fake"):
            yield Skip(str(path), "expected <training|validation|testing>/<real|fake>/<file>")
            continue
        split, label, _ = parts
        yield Entry(path, f"{split}-{label}-{stem(path)}", label, proportion=SPLITS[split], language="EN")


@register("FakeOrReal", "FoR", "FakeOrReal/for-original", "test")
def entries(ctx):
    yield from _for_entries(ctx)


@register("FakeOrReal-norm", "FoRnorm", "FakeOrReal/for-norm", "test", reference_name="FakeOrReal_norm")
def entries_norm(ctx):
    yield from _for_entries(ctx)
