"""`adf models`: the detector architectures with their parameter counts.

Models are built on the meta device (no memory, no initialisation), so even
XLS-R-2B is listed instantly.
"""
from __future__ import annotations


def parameter_counts(name):
    """(backbone, head) parameter counts of detector `name`."""
    from adf.models.classifier import build_on_meta

    model = build_on_meta(name)
    return (sum(p.numel() for p in model.backbone.parameters()),
            sum(p.numel() for p in model.proj_fc.parameters()))


def table_rows():
    """One dict per name in BACKBONES: name, paper name, architecture and parameter counts."""
    from adf.models.backbones import BACKBONES

    rows = []
    for name, (paper, cfg, _) in BACKBONES.items():
        backbone, head = parameter_counts(name)
        rows.append(dict(name=name, paper=paper, dim=cfg["encoder_embed_dim"],
                         layers=cfg["encoder_num_layers"], backbone=backbone, head=head))
    return rows


def add_arguments(parser):
    parser.add_argument("--csv", action="store_true", help="comma-separated output")


def run(args):
    rows = table_rows()
    if args.csv:
        print("name,paper,dim,layers,backbone_params,head_params")
        for r in rows:
            print(f"{r['name']},{r['paper']},{r['dim']},{r['layers']},{r['backbone']},{r['head']}")
        return 0
    header = f"{'name':<10} {'paper name':<13} {'dim':>5} {'layers':>6} {'backbone params':>22} {'head':>6}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['name']:<10} {r['paper']:<13} {r['dim']:>5} {r['layers']:>6} "
              f"{r['backbone']:>13,} ({r['backbone'] / 1e6:6.1f}M) {r['head']:>6,}")
    return 0
