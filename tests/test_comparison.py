"""Published EERs beside measured ones (adf.comparison, tools/results_table.py --published)."""
import os
import subprocess
import sys

import pandas as pd
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(REPO, "tools", "results_table.py")
SHIPPED = os.path.join(REPO, "recipes", "evaluate", "conf", "published.yaml")


@pytest.fixture()
def scores(tmp_path):
    """Two test sets: In-the-Wild (ItW) perfectly separated, FakeOrReal (FoR) with one swap."""
    rows = [("ItW-r1", "real", 0.9), ("ItW-r2", "real", 0.8), ("ItW-f1", "fake", 0.1), ("ItW-f2", "fake", 0.2),
            ("FoR-r1", "real", 0.9), ("FoR-r2", "real", 0.3), ("FoR-f1", "fake", 0.5), ("FoR-f2", "fake", 0.1)]
    key = tmp_path / "test.csv"
    pd.DataFrame({"ID": [r[0] for r in rows], "Label": [r[1] for r in rows]}).to_csv(key, index=False)
    path = tmp_path / "m.txt"
    path.write_text("".join(f"{r[0]} {r[2]}\n" for r in rows))
    return key, path


def run(*args, check=True):
    return subprocess.run([sys.executable, TOOL, *map(str, args)], capture_output=True, text=True, check=check)


def write(path, text):
    path.write_text(text)
    return path


def test_published_rows_sit_beside_the_measured_ones(scores, tmp_path):
    key, path = scores
    published = write(tmp_path / "p.yaml", """
systems:
  - name: Paper-A
    setting: zero-shot
    source: "Table 2 of the paper"
    eer: {In-the-Wild: 1.23, FoR: 2.5, ADD2023: 7.0}
  - name: Paper-B
    source: "Table 3"
    eer: {Deepfake-Eval-2024: 12.0}
""")
    out, md = tmp_path / "t.csv", tmp_path / "t.md"
    run(f"mine={path}", "--key", key, "--published", published, "--csv", out, "--markdown", md)
    table = pd.read_csv(out)
    assert list(table.columns) == ["model", "FoR", "ItW", "Pooled", "source"]
    # Paper-B shares no test set with this table: left out; ADD2023 is not a column here.
    assert table.model.tolist() == ["mine", "Paper-A, zero-shot (published)"]
    mine, paper = table.iloc[0], table.iloc[1]
    # hand-computed: ItW separated (0 %), FoR one real below one fake (50 %)
    assert (mine.ItW, mine.FoR) == pytest.approx((0.0, 50.0))
    assert (paper.ItW, paper.FoR) == pytest.approx((1.23, 2.5))
    assert pd.isna(paper.Pooled) and pd.isna(mine.source) and paper.source == "Table 2 of the paper"
    text = md.read_text()
    assert "| Paper-A, zero-shot (published) | 2.50 | 1.23 | - |" in text
    assert "- Paper-A, zero-shot: Table 2 of the paper" in text and "Paper-B" not in text


def test_without_published_the_csv_has_no_source_column(scores, tmp_path):
    key, path = scores
    out = tmp_path / "t.csv"
    run(f"mine={path}", "--key", key, "--csv", out)
    assert list(pd.read_csv(out).columns) == ["model", "FoR", "ItW", "Pooled"]


@pytest.mark.parametrize("body, message", [
    ("systems:\n  - name: X\n    source: s\n    eer: {Nowhere: 1.0}\n", "unknown test set 'Nowhere'"),
    ("systems:\n  - name: X\n    source: s\n    eer: {ItW: 120}\n", "must be a number in [0, 100]"),
    ("systems:\n  - name: X\n    eer: {ItW: 1.0}\n", "needs a `source`"),
    ("systems: []\n", "non-empty list under `systems:`"),
    ("systems:\n  - name: X\n    source: s\n    eer: {ItW: 1}\n  - name: X\n    source: t\n    eer: {FoR: 2}\n",
     "listed twice"),
])
def test_bad_published_file_is_one_clear_error(scores, tmp_path, body, message):
    key, path = scores
    bad = write(tmp_path / "bad.yaml", body)
    result = run(f"mine={path}", "--key", key, "--published", bad, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert str(bad) in result.stderr and message in result.stderr


def test_shipped_published_file_reads_and_names_a_source_for_every_row():
    from adf.comparison import read_published

    rows = read_published(SHIPPED)
    assert len(rows) >= 14 and all(r["source"] for r in rows)
    columns = set().union(*(r["eer"] for r in rows))
    assert columns == {"ADD2023", "DeepVoice", "FoR", "FoRnorm", "ItW", "DFE2024"}
