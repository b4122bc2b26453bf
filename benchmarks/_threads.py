"""The --threads option every benchmark script shares."""

from __future__ import annotations

import argparse

import torch


def parse_threads(description: str, parser: argparse.ArgumentParser | None = None) -> argparse.Namespace:
    """Parse the command line with a ``--threads`` option and apply it to torch."""
    parser = parser or argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--threads", type=int, default=None,
        help="torch intra-op threads (default: torch's choice); 1 gives stable timings "
        "on a machine loaded by other processes",
    )
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    return args
