"""CN-Celeb2: walked FLAC, all real, Mandarin.

Layout `CNCeleb2/CN-Celeb2_flac/data/<idNNNNN>/<genre>-<session>-<utt>.flac`.
Speaker = the id folder, ID = `CNCeleb2-<spk>-<stem>`. Same as the reference.
"""
from adf.data.corpora.base import Entry, Skip, rel_parts, register, stem, walk


@register("CNCeleb2", "CNCeleb2", "CNCeleb2/CN-Celeb2_flac/data", "train")
def entries(ctx):
    for path in walk(ctx.folder, ".flac"):
        parts = rel_parts(path, ctx.folder)
        if len(parts) != 2:
            yield Skip(str(path), "expected <speaker>/<file>.flac")
            continue
        yield Entry(path, f"{parts[0]}-{stem(path)}", "real", speaker=parts[0], language="ZH")
