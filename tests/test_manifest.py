import pandas as pd
import pytest

from adf.data.manifest import COLUMNS, ManifestError, read_manifest, write_manifest
from tests.synth import manifest_row


def _write(tmp_path, rows, name="m.csv"):
    p = tmp_path / name
    pd.DataFrame(rows, columns=COLUMNS).to_csv(p, index=False)
    return p


def test_root_placeholder_and_types(tmp_path):
    p = _write(tmp_path, [manifest_row("A-1", "real", "$ROOT/x/a.wav", 1.234, 8000)])
    df, problems = read_manifest(p, root="/data/")
    assert problems == []
    assert df.loc[0, "Path"] == "/data/x/a.wav"
    assert df.loc[0, "SampleRate"] == 8000 and df.loc[0, "Duration"] == pytest.approx(1.23)


def test_each_bad_row_is_named_with_file_row_and_column(tmp_path):
    rows = [
        manifest_row("A-1", "real", "$ROOT/a.wav", 1.0),
        manifest_row("A-2", "bonafide", "$ROOT/b.wav", 1.0),   # bad label
        manifest_row("A-3", "fake", "$ROOT/c.wav", -1),         # missing-file marker
        manifest_row("A-1", "fake", "$ROOT/d.wav", 1.0),        # duplicate ID
        dict(manifest_row("A-5", "fake", "$ROOT/e.wav", 1.0), SampleRate="abc"),
    ]
    p = _write(tmp_path, rows)
    with pytest.raises(ManifestError) as e:
        read_manifest(p)
    msg = str(e.value)
    assert str(p) in msg
    assert "row 3, column Label" in msg and "'bonafide'" in msg
    assert "row 4, column Duration" in msg
    assert "row 5, column ID: duplicate" in msg and "row 2, column ID: duplicate" in msg
    assert "row 6, column SampleRate" in msg
    df, problems = read_manifest(p, on_error="skip")
    assert list(df["ID"]) == []  # A-1 rows are both duplicates; the others are bad
    assert len(problems) == 5


def test_skip_keeps_good_rows_and_checks_files(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"x")
    rows = [manifest_row("A-1", "real", "$ROOT/a.wav", 1.0), manifest_row("A-2", "fake", "$ROOT/gone.wav", 1.0)]
    p = _write(tmp_path, rows)
    df, problems = read_manifest(p, root=tmp_path, on_error="skip", check_files=True)
    assert list(df["ID"]) == ["A-1"]
    assert len(problems) == 1 and "file not found" in problems[0] and "gone.wav" in problems[0]


def test_missing_columns_and_unreadable_csv(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("ID,Label\nA-1,real\n")
    with pytest.raises(ManifestError, match="missing column"):
        read_manifest(p)
    with pytest.raises(ManifestError, match="does not exist"):
        read_manifest(tmp_path / "none.csv")


def test_quoted_commas_round_trip_atomically(tmp_path):
    row = manifest_row("ItW-1", "real", "$ROOT/a.wav", 2.0)
    row["Speaker"] = "Smith, John"
    out = tmp_path / "sub" / "out.csv"
    write_manifest(pd.DataFrame([row], columns=COLUMNS), out)
    assert '"Smith, John"' in out.read_text()
    df, _ = read_manifest(out)
    assert df.loc[0, "Speaker"] == "Smith, John"
    assert [p.name for p in out.parent.iterdir()] == ["out.csv"]  # no temp file left


def test_written_files_follow_the_umask(tmp_path):
    import os

    out = tmp_path / "o.csv"
    old = os.umask(0o022)
    try:
        write_manifest(pd.DataFrame([manifest_row("A-1", "real", "a.wav", 1.0)], columns=COLUMNS), out)
    finally:
        os.umask(old)
    assert oct(out.stat().st_mode & 0o777) == oct(0o644)
