"""Text cells that spreadsheets must not evaluate.

Ids and free-text fields come from file names and corpus metadata, which
anyone can choose: a cell such as `=HYPERLINK(...)` or `@SUM(...)` in a CSV
is run as a formula when the file is opened in a spreadsheet (CSV
injection). adf writes such cells with a leading apostrophe, which
spreadsheets show as text; plain numbers (`-1`, `+0.5`) and the manifest's
placeholder `-` are left as they are.
"""
from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def safe_cell(text):
    """`text`, prefixed with `'` when a spreadsheet would take it for a formula."""
    if isinstance(text, str) and text.startswith(FORMULA_STARTS) and text != "-" and not _is_number(text):
        return "'" + text
    return text
