"""DiffSSD: walked, all fake, English.

Layout `DiffSSD/generated_speech/<system>/[speaker_<n>/]<file>.wav`. Attack =
the system folder, Speaker = the next folder when it names a speaker, else
`-`. ID = `DiffSSD-<system>-<speaker>-EN-<stem>`.
Differs from the reference: only `generated_speech/` is walked, since every
file found is labelled fake; anything else under `DiffSSD/` is not generated.
"""
from adf.data.corpora.base import Entry, Skip, rel_parts, register, stem, walk


@register("DiffSSD", "DiffSSD", "DiffSSD", "train")
def entries(ctx):
    top = ctx.folder / "generated_speech"
    for path in walk(top, ".wav"):
        parts = rel_parts(path, top)
        if len(parts) < 2:
            yield Skip(str(path), "expected generated_speech/<system>/.../<file>.wav")
            continue
        speaker = parts[1] if len(parts) > 2 and "speaker" in parts[1] else "-"
        yield Entry(path, f"{parts[0]}-{speaker}-EN-{stem(path)}", "fake", attack=parts[0],
                    speaker=speaker, language="EN")
