"""Score files in, metric tables out.

The score-file formats and their reader live in adf.scorefile. Here:

* `keys`: labels from a key file (a 12-column manifest, docs/data.md, or a
  two-column ``id label`` file) and attaching them to trials;
* `groups`: the subset of each trial, by ID prefix (text before the first
  ``-``, docs/data.md) or by any manifest column;
* `rows`: the metric rows, Pooled and per subset (adf.metrics computes them);
* `formats`: terminal, Markdown, JSON and CSV output;
* `plots`: DET curves and score histograms;
* `cli`: `adf score` and tools/score_eer.py.

Every problem row is named (file, line, what is wrong); readers raise
`ScoreError` or, with ``on_error="skip"``, drop the rows and return the
problems so the caller can warn. The names below are the package's API.
"""
from adf.scorefile import ScoreError, read_scores
from adf.scoring.cli import add_arguments, load_labelled, run
from adf.scoring.formats import COLUMNS, format_markdown, format_text, write_json, write_rows_csv
from adf.scoring.groups import POOLED, groups, subset_codes
from adf.scoring.keys import attach_labels, read_key
from adf.scoring.plots import plot_det, plot_histograms, write_plots
from adf.scoring.rows import METRIC_KEYS, score_rows

__all__ = ["COLUMNS", "METRIC_KEYS", "POOLED", "ScoreError", "add_arguments", "attach_labels", "format_markdown",
           "format_text", "groups", "load_labelled", "plot_det", "plot_histograms", "read_key", "read_scores",
           "run", "score_rows", "subset_codes", "write_json", "write_plots", "write_rows_csv"]
