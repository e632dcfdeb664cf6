"""`adf serve`: score uploaded audio over HTTP, with a web page at `/`.

    adf serve --ckpt model.safetensors --port 8000
    curl -F file=@clip.wav http://127.0.0.1:8000/v1/detect

Endpoints and status codes: adf.serve.app. Requests of concurrent clients are
batched on the model (adf.serve.batching). `--port 0` picks a free port; the
first line printed says where the service listens.
"""
from __future__ import annotations

import sys

from adf.detect import positive_seconds
from adf.limits import add_rate_arguments


def add_arguments(parser):
    parser.add_argument("--ckpt", required=True,
                        help="detector checkpoint: a file, an `adf export` folder or a Hugging Face Hub model "
                             "ORG/NAME[@REVISION] (as `adf detect --ckpt`)")
    parser.add_argument("--model", default=None, help="architecture name (default: from the checkpoint)")
    parser.add_argument("--input", default=None, metavar="POLICY",
                        help="input policy override (whole or first-N; default: the checkpoint's)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default %(default)s; 0.0.0.0 for every interface)")
    parser.add_argument("--port", type=int, default=8000, help="port (default %(default)d; 0 = any free one)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16", "int8"], default="auto",
                        help="as `adf detect --precision` (default %(default)s)")
    parser.add_argument("--engine", choices=["torch", "onnxruntime"], default="torch",
                        help="as `adf detect --engine` (onnxruntime: fp32 on the CPU; default %(default)s)")
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="decision threshold on prob_real: at or above it the audio is called real "
                             "(default %(default)g)")
    parser.add_argument("--max-batch", type=int, default=8,
                        help="most model inputs scored in one forward pass (default %(default)d)")
    parser.add_argument("--max-wait-ms", type=float, default=10.0,
                        help="how long the first input of a batch waits for others (default %(default)g)")
    parser.add_argument("--max-queue", type=int, default=64,
                        help="requests that may wait for the model; more get 503 (default %(default)d)")
    parser.add_argument("--max-upload-mb", type=float, default=50.0,
                        help="largest request body in MiB; larger gets 413 (default %(default)g)")
    parser.add_argument("--max-seconds", type=positive_seconds, default=600.0,
                        help="longest audio in seconds; longer gets 413 (default %(default)g)")
    parser.add_argument("--window", type=positive_seconds, default=4.0,
                        help="window length in seconds when a request asks for windows without one "
                             "(default %(default)g)")
    add_rate_arguments(parser)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])


def config_of(args):
    """The ServeConfig of the command line; ValueError on a bad combination."""
    from adf.serve.app import ServeConfig
    from adf.serve.upload import ServeLimits

    if not 0 <= args.threshold <= 1:
        raise ValueError("--threshold must be within [0, 1]")
    if args.max_batch < 1 or args.max_queue < 1 or args.max_wait_ms < 0:
        raise ValueError("--max-batch and --max-queue must be >= 1, --max-wait-ms >= 0")
    if not args.max_upload_mb > 0:
        raise ValueError("--max-upload-mb must be > 0")
    if not 0 < args.min_rate <= args.max_rate:
        raise ValueError("--min-rate and --max-rate must be > 0 and min <= max")
    limits = ServeLimits(int(args.max_upload_mb * 2**20), args.max_seconds, args.min_rate, args.max_rate)
    return ServeConfig(args.threshold, args.max_batch, args.max_wait_ms, args.max_queue, args.window, limits)


def bind(host, port):
    """A listening socket on host:port (port 0: a free one chosen by the system)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run(args):
    import torch
    import uvicorn

    from adf.detect import pick_device
    from adf.serve.adapter import ModelAdapter
    from adf.serve.app import create_app

    config = config_of(args)
    device = pick_device(args.device, args.engine)
    if args.threads:
        torch.set_num_threads(args.threads)
    adapter = ModelAdapter.load(args.ckpt, device=device, precision=args.precision, input_policy=args.input,
                                model_name=args.model, engine=args.engine)
    sock = bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"adf serve: {adapter.info['name']} ({adapter.info['parameters']:,} parameters, "
          f"{adapter.info['precision']} on {device}) listening on http://{shown}:{port} (page /, docs /docs)",
          flush=True)
    server = uvicorn.Server(uvicorn.Config(create_app(adapter, config), log_level=args.log_level,
                                           timeout_graceful_shutdown=5))
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    from adf.cli import main

    sys.exit(main(["serve", *sys.argv[1:]]))
