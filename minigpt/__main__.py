"""Command line: ``python -m minigpt COMMAND``.

- ``env``: the versions, device and data locations, each marked OK or with its
  problem.
- ``train``: train a GPT on a corpus and write a checkpoint folder (also under
  ``torchrun``).
- ``sample``: continue a prompt with a trained checkpoint.

Each command lives in its own module; this file only dispatches.
"""

import argparse
import sys

__all__ = [
    "build_parser",
    "main",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m minigpt",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True
    )
    commands.add_parser(
        "env",
        help="print versions, device and data locations, with OK/problem "
        "per line",
    )
    from minigpt import cli

    cli.add_train_arguments(
        commands.add_parser(
            "train",
            help="train a GPT and write a checkpoint",
            description=cli.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    cli.add_sample_arguments(
        commands.add_parser(
            "sample",
            help="generate text from a checkpoint",
            description="Continue --prompt with the model in --checkpoint.",
        )
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "env":
        from minigpt.env import main as env_main

        return env_main()
    if args.command in ("train", "sample"):
        from minigpt import cli

        return (
            cli.run_train(args)
            if args.command == "train"
            else cli.run_sample(args)
        )
    raise AssertionError(f"unhandled command {args.command!r}")


if __name__ == "__main__":
    sys.exit(main())
