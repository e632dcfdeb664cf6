"""AISHELL-3: walked, all real, Mandarin.

Layout `AIShell3/<train|test>/wav/<SSBxxxx>/<file>.wav`; no dev set. Speaker
= the SSB folder, ID = `AIShell3-<spk>-<stem>`. Same as the reference; files
at another depth are reported.
"""
from adf.data.corpora.base import Entry, Skip, rel_parts, register, stem, walk

SPLITS = {"train": "train", "test": "test"}


@register("AIShell3", "AIShell3", "AIShell3", "train")
def entries(ctx):
    for path in walk(ctx.folder, ".wav"):
        parts = rel_parts(path, ctx.folder)
        if len(parts) != 4 or parts[0] not in SPLITS:
            yield Skip(str(path), "expected <train|test>/wav/<speaker>/<file>.wav")
            continue
        yield Entry(path, f"{parts[2]}-{stem(path)}", "real", speaker=parts[2],
                    proportion=SPLITS[parts[0]], language="ZH")
