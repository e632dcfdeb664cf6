"""Per-corpus preparers, registered by name.

Each module here describes one corpus (or one family sharing a layout) and
registers it with `adf.data.corpora.base.register`; `CORPORA` maps the name to
its `Corpus`. `adf prepare --list` shows them all.

Each module's docstring is the user documentation of its corpora (layout,
metadata, how rows are built, where adf departs from the reference): `adf
prepare --describe NAME` prints it and `docs/corpora.md` is generated from
them (`python tools/make_corpora_doc.py`).
"""
import importlib

from adf.data.corpora.base import CORPORA, Corpus, build_manifest, get_corpus

MODULES = [
    "egs", "asvspoof2019_la", "asvspoof2021", "asvspoof5", "cfad", "decro", "dfadd",
    "diffusion_deepfake", "diffssd", "dsd", "habla", "mlaad", "spoofceleb", "voicemos",
    "cvoicefake", "libritts", "ljspeech", "voxceleb2", "fleurs", "codecfake_xie",
    "codecfake_wu", "aishell3", "cnceleb2", "mls", "wavefake", "fake_or_real",
    "in_the_wild", "deepvoice", "add2023", "deepfake_eval_2024", "wildsvdd",
    "partialspoof", "had", "egs_partial",
]
for _name in MODULES:
    importlib.import_module(f"{__name__}.{_name}")

__all__ = ["CORPORA", "Corpus", "build_manifest", "get_corpus"]
