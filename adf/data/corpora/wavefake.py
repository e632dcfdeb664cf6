"""WaveFake: walked, all fake; LJSpeech (EN) and JSUT (JA) based.

Layout `WaveFake/generated_audio/<system>/<file>.wav`. Attack = the system
folder; ID = `WF-<system>_<stem>` (joined with `_`: the same stem occurs in
every system folder). Language `EN` for `ljspeech` folders, `JA` for `jsut`.
Differs from the reference: a folder that names neither gets Language `-`
instead of the previous file's language, and files deeper than one
folder are reported rather than silently not collected.
"""
from adf.data.corpora.base import Entry, Skip, rel_parts, register, stem, walk


@register("WaveFake", "WF", "WaveFake/generated_audio", "train")
def entries(ctx):
    for path in walk(ctx.folder, ".wav"):
        parts = rel_parts(path, ctx.folder)
        if len(parts) != 2:
            yield Skip(str(path), "expected <system>/<file>.wav")
            continue
        system = parts[0]
        lang = "EN" if "ljspeech" in system else "JA" if "jsut" in system else "-"
        yield Entry(path, f"{system}_{stem(path)}", "fake", attack=system, language=lang)
