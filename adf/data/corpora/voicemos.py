"""VoiceMOS / Blizzard Challenge releases: walked.

Layout `VoiceMOS/main/blizzard/<release>/<SYS>/.../<file>.wav`; system `A` is
natural speech (real), every other system letter is fake. Attack, Speaker,
Proportion and Language are `-`.
Differs from the reference: the ID is built from the file's path below the
blizzard folder (`VoiceMOS-<release>_<SYS>_..._<stem>`) instead of a running
index over the sorted walk, so IDs stay the same when files are added or
removed and still never collide.
"""
from adf.data.corpora.base import Entry, Skip, rel_parts, register, stem, walk


@register("VoiceMOS", "VoiceMOS", "VoiceMOS/main/blizzard", "train")
def entries(ctx):
    for path in walk(ctx.folder, ".wav"):
        parts = rel_parts(path, ctx.folder)
        if len(parts) < 3:
            yield Skip(str(path), "expected <release>/<system>/.../<file>.wav")
            continue
        file_id = "_".join(parts[:-1] + (stem(path),))
        yield Entry(path, file_id, "real" if parts[1] == "A" else "fake")
