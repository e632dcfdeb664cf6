"""FLEURS and FLEURS-R: walked, 102 languages.

Layout `FLEURS/<fleurs|fleurs-r>/data/<lang_folder>/audio/<train|dev|test>/<id>.wav`.
FLEURS is real, FLEURS-R (speech-restored, stored inside `FLEURS/`, not in a `FLEURS-R/` folder)
fake. Language = the folder's text before the first `_`, upper-cased, with
the reference's two exceptions (`cmn_hans_cn` -> `CN`, `yue_hant_hk` ->
`YUE_HANT`); split train/dev/test -> train/valid/test. IDs:
`FLEURS-<LANG>-<stem>`, `FLEURSR-<LANG>-<stem>`.
Differs from the reference: the FLEURS-R prefix has no `-` (the reference's
`FLEURS-R-` was scored as FLEURS).
"""
from adf.data.corpora.base import Entry, Skip, rel_parts, register, stem, walk

SPLITS = {"train": "train", "dev": "valid", "test": "test"}
SPECIAL = {"cmn_hans_cn": "CN", "yue_hant_hk": "YUE_HANT"}


def _fleurs_entries(ctx, label):
    for path in walk(ctx.folder, ".wav"):
        parts = rel_parts(path, ctx.folder)
        if len(parts) != 4 or parts[2] not in SPLITS:
            yield Skip(str(path), "expected <lang>/audio/<train|dev|test>/<file>.wav")
            continue
        lang = SPECIAL.get(parts[0], parts[0].split("_")[0].upper())
        yield Entry(path, f"{lang}-{stem(path)}", label, proportion=SPLITS[parts[2]], language=lang)


@register("FLEURS", "FLEURS", "FLEURS/fleurs/data", "train")
def entries(ctx):
    yield from _fleurs_entries(ctx, "real")


@register("FLEURS-R", "FLEURSR", "FLEURS/fleurs-r/data", "train")
def entries_r(ctx):
    yield from _fleurs_entries(ctx, "fake")
