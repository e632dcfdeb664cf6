"""Data-drift monitoring on pooled embeddings (`adf embed` writes them, `adf drift` compares them).

`estimators` holds the distances between two samples; `monitor` splits the
incoming sample into groups or time windows, runs the estimators against the
reference, raises alarms and writes the JSON/CSV report and the plot.
"""
