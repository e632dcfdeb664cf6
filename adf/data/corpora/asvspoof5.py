"""ASVspoof5: track-1 protocol driven, MLS-based, English.

Protocols `ASVspoof5.{train,dev.track_1,eval.track_1}.tsv` are space-separated
without a header: `SPEAKER FILE GENDER CODEC CODEC_Q CODEC_SEED ATTACK_TAG
ATTACK_LABEL KEY TMP`. ID = `ASV5-<ATTACK_LABEL>-<FILE>`, Attack = ATTACK_LABEL
(`bonafide` for bona fide), split from the protocol (dev -> valid, eval ->
test). Rows whose audio is missing are reported and dropped.
Differs from the reference: the first trial of each protocol is kept (the
reference read it as a header and lost it), and the audio is found both in the
reference's layout (`ASVspoof5_train/flac_T/`) and where the official archives
unpack (`flac_T/` at the top), so nothing has to be moved.
"""
from adf.data.corpora.base import Entry, Skip, read_fields, register

SUBSETS = [("train", "ASVspoof5.train.tsv", "flac_T", "train"),
           ("dev", "ASVspoof5.dev.track_1.tsv", "flac_D", "valid"),
           ("eval", "ASVspoof5.eval.track_1.tsv", "flac_E_eval", "test")]


@register("ASVspoof5", "ASV5", "ASVspoof5", "train")
def entries(ctx):
    for subset, protocol_name, flac, proportion in SUBSETS:
        protocol = ctx.folder / protocol_name
        if not protocol.is_file():
            yield Skip(str(protocol), "protocol file not found: this subset is left out")
            continue
        audio = ctx.folder / f"ASVspoof5_{subset}" / flac
        if not audio.is_dir() and (ctx.folder / flac).is_dir():
            audio = ctx.folder / flac

        def make(f, where, audio=audio, proportion=proportion):
            speaker, name, attack, key = f[0], f[1], f[7], f[8]
            return Entry(audio / f"{name}.flac", f"{attack}-{name}",
                         "real" if key == "bonafide" else "fake", attack=attack, speaker=speaker,
                         proportion=proportion, language="EN")

        yield from read_fields(protocol, 9, make)
