"""Multilingual LibriSpeech: walked FLAC, all real.

Layout `MLS/mls_<language>/<train|dev|test>/audio/<spk>/<book>/<file>.flac`.
Split train/dev/test -> train/valid/test, Speaker = the spk folder, ID =
`MLS-<LANG>-<stem>`.
Differs from the reference: all eight MLS languages are mapped (Polish `PL`
and Portuguese `PT` too; the reference knew six and failed on the
others); an unknown language folder is reported.
"""
from adf.data.corpora.base import Entry, Skip, rel_parts, register, stem, walk

LANGS = {"dutch": "NL", "english": "EN", "french": "FR", "german": "DE", "italian": "IT",
         "polish": "PL", "portuguese": "PT", "spanish": "ES"}
SPLITS = {"train": "train", "dev": "valid", "test": "test"}


@register("MLS", "MLS", "MLS", "train")
def entries(ctx):
    for path in walk(ctx.folder, ".flac"):
        parts = rel_parts(path, ctx.folder)
        lang = LANGS.get(parts[0].removeprefix("mls_"))
        if len(parts) != 6 or parts[1] not in SPLITS or lang is None:
            yield Skip(str(path), "expected mls_<language>/<train|dev|test>/audio/<spk>/<book>/<file>.flac")
            continue
        yield Entry(path, f"{lang}-{stem(path)}", "real", speaker=parts[3],
                    proportion=SPLITS[parts[1]], language=lang)
