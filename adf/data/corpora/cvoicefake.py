"""CVoiceFake Large: walked MP3, Common Voice based.

Layout `CVoiceFake/CVoiceFake_Large/<LANG>/<generator>/<file>.mp3`; generator
`Bonafide` is real. Attack = the generator folder (`Bonafide` for reals, as in
the reference), Language = the language folder (`CN` -> `ZH`). ID =
`CVoice-<lang folder>-<generator>-<stem>`. Same as the reference; files at
another depth are reported.
"""
from adf.data.corpora.base import Entry, Skip, rel_parts, register, stem, walk


@register("CVoiceFake_Large", "CVoice", "CVoiceFake/CVoiceFake_Large", "train")
def entries(ctx):
    for path in walk(ctx.folder, ".mp3"):
        parts = rel_parts(path, ctx.folder)
        if len(parts) != 3:
            yield Skip(str(path), "expected <lang>/<generator>/<file>.mp3")
            continue
        lang, gen, _ = parts
        yield Entry(path, f"{lang}-{gen}-{stem(path)}", "real" if "Bonafide" in gen else "fake",
                    attack=gen, language="ZH" if "CN" in lang else lang)
