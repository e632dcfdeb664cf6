"""LJSpeech 1.1: walked, all real, one English speaker.

Layout `LJSpeech/LJSpeech-1.1/wavs/<LJxxx-yyyy>.wav`. ID = `LJ-<stem>`.
Differs from the reference: Speaker is `LJ` (the one speaker) instead of the
chapter group before the `-` (`LJ018`), which is not a speaker.
"""
from adf.data.corpora.base import Entry, register, stem, walk


@register("LJSpeech", "LJ", "LJSpeech/LJSpeech-1.1", "train")
def entries(ctx):
    for path in walk(ctx.folder, ".wav"):
        yield Entry(path, stem(path), "real", speaker="LJ", language="EN")
