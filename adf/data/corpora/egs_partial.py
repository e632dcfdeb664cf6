"""egs_partial: the example corpus's partially fake clips (egs_data/partial/).

Real clips of `egs` with one or two stretches of a fake clip of the same split and channel
spliced in (built by `tools/make_egs_partial.py`). `egs_data/partial/metadata.csv` has the
columns of `egs` plus `fake_regions` (the inserted stretches, `start-end;...` in seconds,
the manifest's `FakeRegions`), `base` (the real clip) and `inserts` (the fake clips);
`file` is relative to the egs root, as for `egs` (`adf prepare egs_partial --root
egs_data`). Every row is `fake`; Attack = the inserted clips' generators (`+`-joined);
split train|valid|test is the Proportion. ID = `EGSPART-<file name without extension>`.
"""
from pathlib import Path

from adf.data.corpora.base import Entry, Skip, read_csv_rows, register
from adf.data.corpora.egs import SPLITS
from adf.localisation.regions import RegionError, parse_regions


@register("egs_partial", "EGSPART", "", "example", regions=True)
def entries(ctx):
    def make(row, where):
        split = row["split"].lower()
        try:
            regions = parse_regions(row["fake_regions"])
        except RegionError as err:
            return Skip(where, str(err))
        if split not in SPLITS or not regions:
            return Skip(where, f"split must be train|valid|test and fake_regions non-empty "
                               f"(got {row['split']!r}, {row['fake_regions']!r})")
        return Entry(ctx.folder / row["file"], Path(row["file"]).stem, "fake",
                     attack=row.get("attack") or "-", speaker=row.get("speaker") or "-",
                     proportion=SPLITS[split], language=(row.get("language") or "-").upper(),
                     regions=regions)

    yield from read_csv_rows(ctx.meta or ctx.folder / "partial" / "metadata.csv",
                             ["file", "split", "fake_regions"], make)
