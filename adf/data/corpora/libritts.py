"""LibriTTS, LibriTTS-R and LibriTTS-Vocoded: walked, English.

All three share the LibriTTS tree `<subset>/<speaker>/<chapter>/<file>.wav`
(the vocoded copy has a `<vocoder>/` level on top). Split from the subset
name (train* -> train, dev* -> valid, test* -> test), Speaker = the folder
under the subset. LibriTTS is real; the restored (-R) and vocoded copies are
fake, Attack = the vocoder for the vocoded copy.
IDs: `Libri-<stem>`, `LibriR-<stem>`, `LibriTTSVo-<vocoder>-<stem>`.
Differs from the reference: the prefixes `LibriR` and `LibriTTSVo` have no
`-`, so scoring keeps LibriTTS-R apart from LibriTTS (the reference's
`Libri-R-` and `LibriTTS-Vo-` were scored as `Libri` and `LibriTTS`).
"""
from adf.data.corpora.base import Entry, Skip, rel_parts, register, split_of, stem, walk

SPLITS = [("train", "train"), ("dev", "valid"), ("test", "test")]


def libri_entries(ctx, label, vocoded=False):
    for path in walk(ctx.folder, ".wav"):
        parts = rel_parts(path, ctx.folder)
        vocoder, parts = (parts[0], parts[1:]) if vocoded else ("-", parts)
        if len(parts) < 3:
            yield Skip(str(path), "expected " + ("<vocoder>/" if vocoded else "")
                       + "<subset>/<speaker>/.../<file>.wav")
            continue
        file_id = f"{vocoder}-{stem(path)}" if vocoded else stem(path)
        yield Entry(path, file_id, label, attack=vocoder, speaker=parts[1],
                    proportion=split_of(parts[0], SPLITS), language="EN")


@register("LibriTTS", "Libri", "LibriTTS", "train")
def entries(ctx):
    yield from libri_entries(ctx, "real")


@register("LibriTTS-R", "LibriR", "LibriTTS-R", "train")
def entries_r(ctx):
    yield from libri_entries(ctx, "fake")


@register("LibriTTS-Vocoded", "LibriTTSVo", "LibriTTS-Vocoded", "train")
def entries_vocoded(ctx):
    yield from libri_entries(ctx, "fake", vocoded=True)
