"""VoxCeleb2 dev and VoxCeleb2-Vocoded: walked.

Layouts `VoxCeleb2/dev/aac/<idNNNNN>/<video>/<utt>.wav` (real) and
`VoxCeleb2-Vocoded/<vocoder>/dev/aac/<id>/<video>/<utt>.wav` (fake, Attack =
the vocoder). Speaker = the id folder; Language and Proportion `-`. IDs:
`VoxCeleb2-<id>-<video>-<utt>`, `VoxCeleb2Vo-<vocoder>-<id>-<video>-<utt>`.
Differs from the reference: the vocoded prefix `VoxCeleb2Vo` has no `-`, so it
no longer scores as VoxCeleb2. The release ships AAC `.m4a`, which
libsndfile cannot read: an `.m4a` without a `.wav` beside it is reported
(convert it to WAV first, e.g. with ffmpeg) instead of being ignored.
"""
from adf.data.corpora.base import Entry, Skip, rel_parts, register, stem, walk


def _vox_entries(ctx, vocoded):
    for path in walk(ctx.folder, ".wav", ".m4a"):
        if path.suffix.lower() == ".m4a":
            if not path.with_suffix(".wav").exists():
                yield Skip(str(path), "AAC (.m4a) cannot be read: convert it to .wav first")
            continue
        parts = rel_parts(path, ctx.folder)
        if len(parts) < (4 if vocoded else 3):
            yield Skip(str(path), "expected " + ("<vocoder>/.../" if vocoded else "")
                       + "<id>/<video>/<utt>.wav")
            continue
        spk, video = parts[-3], parts[-2]
        vocoder = parts[0] if vocoded else "-"
        file_id = f"{spk}-{video}-{stem(path)}"
        yield Entry(path, f"{vocoder}-{file_id}" if vocoded else file_id,
                    "fake" if vocoded else "real", attack=vocoder, speaker=spk)


@register("VoxCeleb2", "VoxCeleb2", "VoxCeleb2/dev/aac", "train")
def entries(ctx):
    yield from _vox_entries(ctx, vocoded=False)


@register("VoxCeleb2-Vocoded", "VoxCeleb2Vo", "VoxCeleb2-Vocoded", "train")
def entries_vocoded(ctx):
    yield from _vox_entries(ctx, vocoded=True)
