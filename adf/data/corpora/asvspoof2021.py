"""ASVspoof2021-LA and ASVspoof2021-DF: key-file driven.

Audio: `ASVspoof2021-LA/ASVspoof2021_LA_eval/flac/<TRIAL_ID>.flac` and
`ASVspoof2021-DF/ASVspoof2021_DF_eval/flac/<TRIAL_ID>.flac`. Both read the
official CM `trial_metadata.txt` of the key package (space-separated, no
header; column 1 is the speaker, 2 the trial ID, 5 the attack, 6 the key
`bonafide`/`spoof`, e.g. `LA_0009 LA_E_9332881 alaw ita_tx A07 spoof notrim
eval`) and keep every subset (eval, progress, hidden).
ID = `ASV21LA-<TRIAL_ID>` / `ASV21DF-<TRIAL_ID>`, Attack = the attack column (`bonafide` for bona fide rows, as in the reference), Proportion =
`test`, Language = `EN`; rows whose audio is missing are reported and dropped.
Differs from the reference: the key file is looked up beside the corpus
(`<root>/ASVspoof2021-XX/ASVspoof2021-XX.txt`, `<root>/ASVspoof2021-XX.txt`, or
the key package's `keys/XX/CM/trial_metadata.txt`) or given with --meta,
instead of being read from the working directory.
"""
from adf.data.corpora.base import Entry, find_file, read_fields, register


def _key_entries(ctx, track):
    corpus_dir = ctx.root / f"ASVspoof2021-{track}"
    key = find_file(ctx, f"ASVspoof 2021 {track} key file",
                    corpus_dir / f"ASVspoof2021-{track}.txt", ctx.root / f"ASVspoof2021-{track}.txt",
                    corpus_dir / "keys" / track / "CM" / "trial_metadata.txt",
                    ctx.folder / "keys" / track / "CM" / "trial_metadata.txt")

    def make(f, where):
        speaker, trial, attack, key_ = f[0], f[1], f[4], f[5]
        return Entry(ctx.folder / "flac" / f"{trial}.flac", trial,
                     "real" if key_ == "bonafide" else "fake", attack=attack, speaker=speaker,
                     proportion="test", language="EN")

    yield from read_fields(key, 6, make)


@register("ASVspoof2021-LA", "ASV21LA", "ASVspoof2021-LA/ASVspoof2021_LA_eval", "train")
def entries_la(ctx):
    yield from _key_entries(ctx, "LA")


@register("ASVspoof2021-DF", "ASV21DF", "ASVspoof2021-DF/ASVspoof2021_DF_eval", "train")
def entries_df(ctx):
    yield from _key_entries(ctx, "DF")
