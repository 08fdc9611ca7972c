"""The ``posref`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from posref._version import SPEC_VERSION, __version__


def _cmd_list(args: argparse.Namespace) -> int:
    from posref._spec import spec_functions

    entries = spec_functions(args.family)
    if args.family is not None and not entries:
        families = sorted({f.family for f in spec_functions()})
        print(f"posref list: unknown family {args.family!r}; known families: {', '.join(families)}", file=sys.stderr)
        return 2
    if args.json:
        json.dump([e.as_dict() for e in entries], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    width = max((len(e.name) for e in entries), default=0)
    family = None
    for entry in entries:
        if entry.family != family:
            family = entry.family
            print(f"\n{family}  ({entry.reference})")
        print(f"  {entry.name:<{width}}  {entry.summary}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="posref",
        description="Executable specification, golden vectors and conformance checks for position encodings.",
    )
    parser.add_argument(
        "--version", action="version", version=f"posref {__version__} (spec {SPEC_VERSION})"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p_list = sub.add_parser("list", help="list the specification functions")
    p_list.add_argument("--json", action="store_true", help="print one JSON object per function")
    p_list.add_argument("--family", default=None, help="only this family")
    p_list.set_defaults(handler=_cmd_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 2
    return args.handler(args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
