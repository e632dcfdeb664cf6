"""DFADD: walked, English (VCTK); label from the system folder.

Layout `DFADD/<system folder>/<split>/<file>.wav|.flac`; a system folder
containing `BONAFIDE` is real. Attack = the system folder, Speaker = the stem
up to the first `_`, Proportion = the split folder verbatim (train, valid,
test). ID = `DFADD-<system folder>-<stem>`. Same as the reference; files not
at that depth are reported.
"""
from adf.data.corpora.base import Entry, Skip, rel_parts, register, stem, walk


@register("DFADD", "DFADD", "DFADD", "train")
def entries(ctx):
    for path in walk(ctx.folder, ".wav", ".flac"):
        parts = rel_parts(path, ctx.folder)
        if len(parts) != 3:
            yield Skip(str(path), "expected <system>/<split>/<file>")
            continue
        system, split, name = parts
        yield Entry(path, f"{system}-{stem(name)}", "real" if "BONAFIDE" in system else "fake",
                    attack=system, speaker=stem(name).split("_")[0], proportion=split, language="EN")
