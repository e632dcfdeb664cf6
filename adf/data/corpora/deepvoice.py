"""DEEP-VOICE / Kaggle "DeepFake Voice Recognition": segmented test set.

Two ways in, both giving `DeepVoice-VC_<base>_seg_<n>` rows with Start/Stop:

* segment files already written (the reference's layout
  `AUDIO_SEGMENTS/<REAL|FAKE>/<base>_seg_<n>.wav`, found under `DeepVoice/`
  or, where the reference's writer puts it, `DeepVoice/KAGGLE/`):
  walked, Start/Stop cover each whole file;
* otherwise the raw recordings `KAGGLE/AUDIO/<REAL|FAKE>/<base>.wav` plus the
  reference's segmentation log (`DeepVoice/segments.log` or --meta), replayed
  without writing audio: each logged segment becomes a row pointing into the
  source file (adf.data.segment.parse_deepvoice_log; the end is clamped to
  the file length).

Label = the folder in lower case, Language `EN`, Proportion `-`.
Differs from the reference: Attack is `VC` for fake rows only; real rows get
`-` (the reference wrote `VC` on the originals too).
"""
from adf.data.corpora.base import Entry, Skip, find_file, rel_parts, register, stem, walk


def _row(path, base_and_seg, folder, start=None, stop=None):
    label = folder.lower()
    return Entry(path, f"VC_{base_and_seg}", label, attack="VC" if label == "fake" else "-",
                 language="EN", start=start, stop=stop)


@register("DeepVoice", "DeepVoice", "DeepVoice", "test", segmented=True)
def entries(ctx):
    for seg_dir in (ctx.folder / "AUDIO_SEGMENTS", ctx.folder / "KAGGLE" / "AUDIO_SEGMENTS"):
        if seg_dir.is_dir():
            for path in walk(seg_dir, ".wav"):
                parts = rel_parts(path, seg_dir)
                if len(parts) != 2 or parts[0] not in ("REAL", "FAKE"):
                    yield Skip(str(path), "expected <REAL|FAKE>/<base>_seg_<n>.wav")
                    continue
                yield _row(path, stem(path), parts[0])
            return
    from adf.data.segment import parse_deepvoice_log

    log = find_file(ctx, "DEEP-VOICE segmentation log (no AUDIO_SEGMENTS folder either)",
                    ctx.folder / "segments.log")
    audio = ctx.folder / "KAGGLE" / "AUDIO"
    table = parse_deepvoice_log(log)
    for base, n, start, end, folder in table[["base", "n", "start", "end", "folder"]].itertuples(index=False):
        yield _row(audio / folder / f"{base}.wav", f"{base}_seg_{n}", folder, int(start), int(end))
