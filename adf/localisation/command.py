"""`adf score-segments`: localisation metrics of `adf detect --resolution` segment
scores against a manifest with FakeRegions (docs/data.md).

    adf score-segments seg.csv --key data/test.csv [--json out.json]
    adf score-segments seg.csv --key data/test.csv --plot ID --audio-root egs_data -o timeline.png

Prints segment-level EERs at 20/40/80/160/320/640 ms, the range-based EER and fake-region
precision/recall/F1 (event- and duration-based, with a collar); see adf.localisation.evaluate.
`--plot ID` also draws that utterance's timeline (waveform, reference regions, scores).
"""
import json
import sys

from adf.localisation.metrics import PARTIALSPOOF_RESOLUTIONS


def add_arguments(parser):
    parser.add_argument("segments", help="segment CSV of adf detect --resolution (id,start,end,score)")
    parser.add_argument("--key", required=True, help="manifest with Label and FakeRegions (docs/data.md)")
    parser.add_argument("--resolutions", default=",".join(f"{r:g}" for r in PARTIALSPOOF_RESOLUTIONS),
                        help="segment-level EER resolutions in seconds (default %(default)s)")
    parser.add_argument("--collar", type=float, default=0.2, help="seconds (default %(default)g)")
    parser.add_argument("--threshold", default="0",
                        help="fake below this score (default 0), or 'eer': the 20 ms segment-EER operating point")
    parser.add_argument("--aggregate", choices=["min", "mean"], default="min")
    parser.add_argument("--json", default=None, help="also write the report as JSON")
    parser.add_argument("--plot", default=None, metavar="ID", help="draw the timeline of this utterance")
    parser.add_argument("--audio-root", default=None, help="replaces $ROOT in the key's paths (for --plot)")
    parser.add_argument("-o", "--output", default="timeline.png", help="PNG of --plot (default %(default)s)")


def run(args):
    from adf.data.manifest import read_manifest
    from adf.localisation.evaluate import evaluate, markdown, read_segment_scores

    key, problems = read_manifest(args.key, root=args.audio_root, on_error="skip")
    for line in problems:
        print(f"skipped key row: {line}", file=sys.stderr)
    key = key.set_index("ID", drop=False)
    segments = read_segment_scores(args.segments)
    try:
        threshold = args.threshold if args.threshold == "eer" else float(args.threshold)
        report = evaluate(segments, key, [float(r) for r in args.resolutions.split(",")], args.collar,
                          threshold, args.aggregate)
    except ValueError as err:
        print(f"adf score-segments: error: {err}", file=sys.stderr)
        return 2
    print(f"{report['n_utterances']} utterances ({report['n_partial']} partially fake), "
          f"scores every {report['resolution'] * 1000:g} ms")
    print(markdown(report))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({k: ({str(r): v for r, v in val.items()} if k == "segment_eer" else val)
                       for k, val in report.items()}, fh, indent=1)
    if args.plot:
        _plot(args, key, segments, report["threshold"])
    return 0


def _plot(args, key, segments, threshold):
    from adf.audio import load_16k
    from adf.localisation.regions import row_regions
    from adf.localisation.scores import fake_regions
    from adf.localisation.timeline import plot_timeline

    if args.plot not in segments or args.plot not in key.index:
        raise SystemExit(f"--plot {args.plot}: not in both the segment scores and the key")
    duration, resolution, scores = segments[args.plot]
    row = key.loc[args.plot]
    wav = load_16k(row["Path"]).numpy()
    reference = row_regions(row["Label"], row.get("FakeRegions", ""), duration)
    plot_timeline(args.output, wav, 16000, reference, scores, resolution, threshold,
                  fake_regions(scores, resolution, duration, threshold), title=args.plot)
    print(f"wrote {args.output}")
