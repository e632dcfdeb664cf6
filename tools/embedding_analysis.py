#!/usr/bin/env python3
"""Embedding analysis: a 2-D map (PCA or t-SNE) of pooled SSL embeddings, coloured
by real/fake and marked by attack or corpus, plus a linear probe's cross-validated EER.

    tools/embedding_analysis.py emb.npy --ids ids.txt --manifest test.csv --out analysis/
    tools/embedding_analysis.py emb.npy --ids scores.csv --manifest test.csv --method tsne \
        --mark-by corpus --cv-groups Speaker --out analysis/

Writes <out>/probe.json and <out>/embedding_<method>.png; prints the probe EER.
"""
import argparse
import os
import runpy
import sys
from pathlib import Path

# A python without adf's environment re-runs this under the checkout's .venv, where adf
# is installed (tools/setup_env.sh); adf/environment.py is standard library only.
runpy.run_path(str(Path(__file__).resolve().parents[1] / "adf" / "environment.py"))["use_repo_environment"]()

from adf import analysis  # noqa: E402
from adf.scorefile import ScoreError  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("embeddings", help="(N, D) float array saved with numpy.save")
    parser.add_argument("--ids", required=True, help="the N IDs in order: one per line, or a CSV with an id/ID column")
    parser.add_argument("--manifest", required=True, help="12-column manifest with ID, Label and the --mark-by column")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--method", choices=["pca", "tsne"], default="pca")
    parser.add_argument("--mark-by", default="Attack", help="manifest column, or 'corpus' for the ID prefix")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cv-groups", help="manifest column (e.g. Speaker) whose values never straddle folds")
    parser.add_argument("--max-points", type=int, default=5000, help="points in the plot (seeded subsample)")
    args = parser.parse_args(argv)
    try:
        result = analysis.analyse(args.embeddings, args.ids, args.manifest, args.out, args.method, args.mark_by,
                                  args.folds, args.seed, args.cv_groups, args.max_points)
    except ScoreError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    grouped = f", folds grouped by {args.cv_groups}" if args.cv_groups else ""
    print(f"linear probe ({result['dim']}-D, {result['n_real']} real / {result['n_fake']} fake, "
          f"{args.folds}-fold CV{grouped}): EER {100 * result['eer']:.2f}%  AUC {result['auc']:.4f}")
    print(f"wrote {os.path.join(args.out, 'probe.json')} and {result['plot']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
