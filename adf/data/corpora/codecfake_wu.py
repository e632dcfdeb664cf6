"""CodecFake by Wu et al.: walked, all fake, VCTK through codecs.

Flat layout `CodecFake/processed/<codec>+<speaker>_<utt>.wav`. Attack = the
text before `+`, Speaker = the text after it up to the first `_`. ID =
`CodecFakeWu-<stem>`, Language `EN`.
Differs from the reference: named `CodecFake-Wu` with prefix `CodecFakeWu`
(the reference's `CodecFake`/`CodecF` differ from Xie et al.'s
`Codecfake`/`Codecf` by letter case only, which case-insensitive file systems
and readers conflate).
"""
from adf.data.corpora.base import Entry, register, stem, walk


@register("CodecFake-Wu", "CodecFakeWu", "CodecFake/processed", "train", reference_name="CodecFake")
def entries(ctx):
    for path in walk(ctx.folder, ".wav"):
        codec, _, rest = stem(path).rpartition("+")
        yield Entry(path, stem(path), "fake", attack=codec or "-",
                    speaker=rest.split("_")[0], language="EN")
