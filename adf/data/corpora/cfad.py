"""CFAD: walked, Chinese; label, split and attack from folders.

Layout `CFAD/CFAD/<version>/<split>/<fake_*|real_*>/<system-or-source>/<file>.wav`.
Attack = the system folder (fakes) or source-corpus folder (reals), Speaker =
the file stem up to the first `_`, split: test* -> test, dev* -> valid,
train* -> train. ID = `CFAD-<version>-<tag>-<label>-<stem>`, where tag is the
Proportion (`train`, `valid`) except for the two test sets.
Differs from the reference: test_seen and test_unseen keep their names in the
ID (`test_seen`, `test_unseen`) instead of both becoming `test`, so identical
stems in the two no longer collide and get every copy removed at merge time.
Files outside the expected 5-level layout are reported, not guessed at.
"""
from adf.data.corpora.base import Entry, Skip, rel_parts, register, split_of, stem, walk

SPLITS = [("test", "test"), ("dev", "valid"), ("train", "train")]


@register("CFAD", "CFAD", "CFAD/CFAD", "train")
def entries(ctx):
    for path in walk(ctx.folder, ".wav"):
        parts = rel_parts(path, ctx.folder)
        if len(parts) != 5:
            yield Skip(str(path), "expected <version>/<split>/<label>/<system>/<file>.wav")
            continue
        version, split, label_dir, system, name = parts
        label = "fake" if "fake" in label_dir else "real" if "real" in label_dir else None
        proportion = split_of(split, SPLITS, None)
        if label is None or proportion is None:
            yield Skip(str(path), f"cannot tell label/split from {label_dir!r}/{split!r}")
            continue
        tag = split.rsplit("_", 1)[0] if proportion == "test" else proportion
        yield Entry(path, f"{version}-{tag}-{label}-{stem(name)}", label, attack=system,
                    speaker=stem(name).split("_")[0], proportion=proportion, language="ZH")
