"""MLAAD v5: walked, all fake, many languages.

Layout `MLAAD_v5/fake/<lang>/<model>/<file>.wav`. Language = the language
folder upper-cased (`zh-cn` -> `ZH`), Attack = the model folder. ID =
`MLAAD-<lang folder>-<model>-<stem>` with the folder's own case (`zh-cn` ->
`ZH`). Same as the reference; files at another depth are reported.
"""
from adf.data.corpora.base import Entry, Skip, rel_parts, register, stem, walk


@register("MLAAD_v5", "MLAAD", "MLAAD_v5/fake", "train")
def entries(ctx):
    for path in walk(ctx.folder, ".wav"):
        parts = rel_parts(path, ctx.folder)
        if len(parts) != 3:
            yield Skip(str(path), "expected <lang>/<model>/<file>.wav")
            continue
        lang, model, _ = parts
        lang_id = "ZH" if lang == "zh-cn" else lang
        yield Entry(path, f"{lang_id}-{model}-{stem(path)}", "fake", attack=model,
                    language="ZH" if lang == "zh-cn" else lang.upper())
