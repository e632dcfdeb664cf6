"""Diffuse or Confuse / DiffusionDeepfake: walked, all fake.

Layout `DiffusionDeepfake/<system>/<file>.wav` (LJSpeech sentences). Attack =
the system folder, ID = `DiffFake-<system>-<stem>`, Language `EN`.
Differs from the reference: Speaker is the stem up to the first `_` (the
reference took the file name, so LJSpeech names without `_` became
`LJ044-0144.wav`, extension included).
"""
from adf.data.corpora.base import Entry, rel_parts, register, stem, walk


@register("DiffusionDeepfake", "DiffFake", "DiffusionDeepfake", "train")
def entries(ctx):
    for path in walk(ctx.folder, ".wav"):
        parts = rel_parts(path, ctx.folder)
        system = parts[0] if len(parts) > 1 else "-"
        yield Entry(path, f"{system}-{stem(path)}", "fake", attack=system,
                    speaker=stem(path).split("_")[0], language="EN")
