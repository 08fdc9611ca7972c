"""The ``posref`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from posref import SPEC_VERSION, __version__


def _cmd_list(args: argparse.Namespace) -> int:
    from posref import spec_functions

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
            print(f"\n{family}")
        print(f"  {entry.name:<{width}}  {entry.summary}")
    return 0


class _Progress:
    """A one-line progress bar on stderr when it is a terminal, else nothing."""

    def __init__(self, label: str, enabled: bool = True) -> None:
        self.label = label
        self.enabled = enabled and sys.stderr.isatty()

    def __call__(self, done: int, total: int, item: str) -> None:
        if not self.enabled:
            return
        width = 30
        filled = width * done // max(total, 1)
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {item[:40]:<40}")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _fail(command: str, message: str) -> int:
    print(f"posref {command}: {message}", file=sys.stderr)
    return 2


def _registry_cases(families, dtypes, progress):
    from posref.golden.cases import CASES
    from posref.golden.registry import build_cases

    return build_cases(CASES, families=families, dtypes=dtypes, progress=progress)


def _error_text(exc: BaseException) -> str:
    """One line for an error: an OSError as 'path: reason', anything else as its message."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return str(exc)


def _cmd_golden_generate(args: argparse.Namespace) -> int:
    from posref.golden import LOW_PRECISION_DTYPES, write_corpus

    dtypes = args.dtype or list(LOW_PRECISION_DTYPES)
    try:
        cases = _registry_cases(args.family, dtypes, _Progress("building", not args.no_progress))
        written = write_corpus(cases, args.out, force=args.force,
                               progress=_Progress("writing ", not args.no_progress))
    except (ValueError, TypeError, OSError) as exc:
        return _fail("golden generate", _error_text(exc).replace("pass force=True to replace it",
                                                                   "pass --force to replace it"))
    state = "written" if written.changed else "already current, left untouched"
    print(f"{len(written.case_ids)} cases {state} in {written.directory}")
    return 0


def _cmd_golden_verify(args: argparse.Namespace) -> int:
    import os

    from posref.golden import LOW_PRECISION_DTYPES, CorpusError, read_manifest, verify_corpus

    if args.no_regenerate and (args.family or args.dtype):
        return _fail("golden verify", "--family and --dtype select the cases to regenerate; "
                                      "they cannot be combined with --no-regenerate")
    if not os.path.isdir(args.directory):
        return _fail("golden verify", f"{args.directory} is not a directory")
    try:  # a broken manifest is reported before the registry is built
        read_manifest(args.directory)
    except CorpusError as exc:
        print(f"posref golden verify: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        return _fail("golden verify", _error_text(exc))
    expected = None
    if not args.no_regenerate:  # the whole registry unless narrowed: a case missing from the corpus is a problem
        dtypes = args.dtype or list(LOW_PRECISION_DTYPES)
        try:
            expected = _registry_cases(args.family, dtypes, _Progress("building", not args.no_progress))
        except ValueError as exc:
            return _fail("golden verify", str(exc))
    try:
        report = verify_corpus(args.directory, expected)
    except CorpusError as exc:
        print(f"posref golden verify: {exc}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, OSError) as exc:
        return _fail("golden verify", _error_text(exc))
    if report.ok:
        what = "schema, hashes and regenerated values" if expected is not None else "schema and hashes"
        print(f"{report.directory}: {report.checked} cases, all current ({what} checked)")
        return 0
    print(report)
    return 1


def _cmd_check(args: argparse.Namespace) -> int:
    from posref.conformance.session import CheckOptions, UsageError, check_output_paths, plan_check, run_check

    try:  # everything that can be wrong with the command line, before any adapter code runs
        outputs = check_output_paths({"--report": args.report, "--markdown": args.markdown})
        plan = plan_check(args.adapter, dtype=args.dtype, corpus=args.corpus, families=args.family,
                          functions=args.function, case_ids=args.case, known_files=args.known or [],
                          builtin_known=not args.ignore_known)
    except UsageError as exc:
        return _fail("check", str(exc))
    options = CheckOptions(adapter=args.adapter, dtype=args.dtype, device=args.device, timeout=args.timeout,
                           max_examples=args.max_examples, seed=args.seed, strict=args.strict,
                           in_process=args.in_process, progress=not args.no_progress,
                           builtin_known=not args.ignore_known)
    return run_check(options, plan.selection, plan.known, outputs, _Progress)


def _cmd_identify(args: argparse.Namespace) -> int:
    from posref.conformance.diagnose import run_identify

    return run_identify(args.adapter, functions=args.function, dtype=args.dtype, device=args.device,
                        timeout=args.timeout, as_json=args.json)


def _cmd_adapters(args: argparse.Namespace) -> int:
    import contextlib
    import importlib
    import io
    import warnings

    from posref.conformance.adapter import BUILTIN

    rows = []
    for name, module_name in sorted(BUILTIN.items()):
        # a library's import chatter (warnings, log lines on stderr) is not this command's output
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            try:
                module = importlib.import_module(module_name)
                why_not = getattr(module, "available", lambda: None)()
                version = getattr(module, "ADAPTER_VERSION", "?")
                dtypes = ",".join(getattr(module, "ADAPTER_DTYPES", ()))
                notes = getattr(module, "ADAPTER_NOTES", "")
            except Exception as exc:  # a broken adapter module is reported, not fatal
                why_not, version, dtypes, notes = f"cannot be imported: {exc}", "?", "", ""
        rows.append({"name": name, "module": module_name, "version": str(version), "dtypes": dtypes,
                     "available": why_not is None, "reason": why_not or "", "notes": notes})
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    for row in rows:
        state = "ready" if row["available"] else f"unavailable: {row['reason']}"
        print(f"{row['name']:<24} {row['version']:<12} {row['dtypes']:<34} {state}")
        if row["notes"]:
            print(f"{'':<24} note: {row['notes']}")
    return 0


def _cmd_matrix(args: argparse.Namespace) -> int:
    import pathlib

    from posref.conformance.known import KNOWN_DIR
    from posref.conformance.matrix import adapter_runs, compare_matrices, render_matrix

    xfails_dir = pathlib.Path(args.xfails_dir) if args.xfails_dir else KNOWN_DIR
    cache: dict = {}

    def cases_for(dtype):
        if dtype not in cache:
            cache[dtype] = _registry_cases(None, [dtype] if dtype != "float64" else [], None)
        return cache[dtype]

    text = render_matrix(adapter_runs(cases_for, args.adapter, xfails_dir,
                                      progress=_Progress("checking", not args.no_progress)))
    if args.check:
        try:
            differences = compare_matrices(pathlib.Path(args.out).read_text(encoding="utf-8"), text)
        except (OSError, UnicodeDecodeError) as exc:
            differences = [f"cannot be read: {exc}"]
        if differences:
            print(f"posref matrix: {args.out} differs from a fresh run in {len(differences)} place(s):",
                  file=sys.stderr)
            for line in differences:
                print(f"  {line}", file=sys.stderr)
            print(f"posref matrix: {args.out} is not current; run 'posref matrix --out {args.out}'",
                  file=sys.stderr)
            return 1
        print(f"{args.out} is current")
        return 0
    out = pathlib.Path(args.out)
    try:
        unchanged = out.is_file() and not compare_matrices(out.read_text(encoding="utf-8"), text)
    except (OSError, UnicodeDecodeError):
        unchanged = False
    if unchanged:  # same statuses, shares within the slack: keep the committed text (no churn across CPUs)
        print(f"{args.out} is current, left untouched")
        return 0
    out.write_text(text, encoding="utf-8")
    print(f"matrix written to {args.out}")
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
    p_list.add_argument("--json", action="store_true", help="print a JSON array with one object per function")
    p_list.add_argument("--family", default=None, help="only this family")
    p_list.set_defaults(handler=_cmd_list)

    p_golden = sub.add_parser("golden", help="generate or verify a golden corpus")
    golden = p_golden.add_subparsers(dest="golden_command", metavar="ACTION")
    p_gen = golden.add_parser("generate", help="write the golden corpus to a directory")
    p_gen.add_argument("--out", required=True,
                       help="corpus directory (created, or updated in place; files its manifest does not list "
                            "are never deleted)")
    p_gen.add_argument("--family", action="append", help="only this family (repeatable)")
    p_gen.add_argument("--dtype", action="append", choices=["float32", "float16", "bfloat16"],
                       help="low-precision variants to include (repeatable; default all)")
    p_gen.add_argument("--force", action="store_true",
                       help="replace a corpus with other cases or versions in --out (never a file it does not list)")
    p_gen.add_argument("--no-progress", action="store_true", help="no progress bar")
    p_gen.set_defaults(handler=_cmd_golden_generate)
    p_ver = golden.add_parser("verify", help="check a corpus: schema, hashes, and that it is current")
    p_ver.add_argument("directory")
    p_ver.add_argument("--family", action="append",
                       help="expect only this family (repeatable; default: every family of the registry)")
    p_ver.add_argument("--dtype", action="append", choices=["float32", "float16", "bfloat16"],
                       help="expect only these low-precision variants (repeatable; default all)")
    p_ver.add_argument("--no-regenerate", action="store_true",
                       help="check schema and hashes only, not the values against the spec")
    p_ver.add_argument("--no-progress", action="store_true", help="no progress bar")
    p_ver.set_defaults(handler=_cmd_golden_verify)
    p_golden.set_defaults(handler=lambda a: (p_golden.print_help(), 2)[1])

    from posref.conformance.session import count, seconds

    p_check = sub.add_parser(
        "check", help="check an implementation against the spec",
        description="Run the golden cases, then hypothesis differential cases, against an adapter. The adapter "
                    "runs in a worker process: a case that crashes, hangs or corrupts it costs that case "
                    "(crash, timeout) and a fresh worker takes the next.",
        epilog="statuses: pass; fail (wrong numbers on valid input); crash (raised on valid input, or the worker "
               "died); timeout; wrong_error (an invalid input rejected with another error class); lenient (an "
               "invalid input accepted); known (a listed divergence, with its reason); fixed (listed, but passes "
               "now); not_implemented; skipped; error (posref's own failure). "
               "exit status: 0 no case failed (known, fixed and lenient cases allowed without --strict); 1 a "
               "case has status fail, crash, timeout, wrong_error or error; 2 usage error "
               "(a bad option, a selection that matches nothing, an unknown --known id, an unwritable report "
               "path, an adapter that cannot be loaded); 3 internal error of posref; 130 interrupted (Ctrl-C or "
               "SIGTERM). The reports are written in every case after the options are checked; an incomplete run "
               "says so in them.")
    p_check.add_argument("--adapter", required=True,
                         help="built-in adapter name, module, module:attribute, or posref.adapters entry point")
    p_check.add_argument("--dtype", default="float32", choices=["float64", "float32", "float16", "bfloat16"])
    p_check.add_argument("--device", default="cpu", help="device the adapter computes on (cpu, cuda)")
    p_check.add_argument("--family", action="append", help="only this family (repeatable)")
    p_check.add_argument("--function", action="append", help="only this spec function (repeatable)")
    p_check.add_argument("--case", action="append", help="only this case id (repeatable)")
    p_check.add_argument("--corpus", help="read cases from this golden corpus instead of the built-in registry")
    p_check.add_argument("--known", "--xfails", dest="known", action="append", metavar="FILE",
                         help="file of known divergences: case ids, one per line, each with a '# reason'; every id "
                              "must name a case (repeatable; added to a built-in adapter's own list)")
    p_check.add_argument("--ignore-known", action="store_true",
                         help="do not apply a built-in adapter's own list of known divergences")
    p_check.add_argument("--max-examples", type=count, default=25,
                         help="hypothesis differential cases per function after the golden cases (0: golden only)")
    p_check.add_argument("--seed", type=count, default=0,
                         help="hypothesis seed of the differential cases, 0 or more (default 0)")
    p_check.add_argument("--strict", action="store_true",
                         help="also fail lenient cases (an invalid input accepted), known divergences and fixed "
                              "ones (listed, but passing now)")
    p_check.add_argument("--timeout", type=seconds, default=60.0,
                         help="seconds allowed per case, positive and finite (default 60); the worker is killed "
                              "when a case runs over")
    p_check.add_argument("--in-process", action="store_true",
                         help="for debugging: call the adapter in posref's own process (no protection from "
                              "crashes; timeouts by SIGALRM, best effort)")
    p_check.add_argument("--report", help="write the JSON report here")
    p_check.add_argument("--markdown", help="write the Markdown report here")
    p_check.add_argument("--no-progress", action="store_true", help="no progress bar")
    p_check.set_defaults(handler=_cmd_check)

    p_matrix = sub.add_parser("matrix", help="run the built-in adapters and write the conformance matrix")
    p_matrix.add_argument("--out", default="conformance/matrix.md", help="Markdown file (default conformance/matrix.md)")
    p_matrix.add_argument("--adapter", action="append", help="only this built-in adapter (repeatable)")
    p_matrix.add_argument("--xfails-dir", default=None,
                          help="directory of <adapter>-<dtype>.txt known-divergence lists (default: the built-in lists)")
    p_matrix.add_argument("--check", action="store_true", help="exit 1 if --out differs from a fresh run")
    p_matrix.add_argument("--no-progress", action="store_true", help="no progress bar")
    p_matrix.set_defaults(handler=_cmd_matrix)

    p_identify = sub.add_parser(
        "identify", help="name the conventions an implementation follows, function by function",
        description="Run each implemented function's golden cases and, where an output differs from the spec, "
                    "name the spec's convention or the common slip that reproduces it within budget.")
    p_identify.add_argument("--adapter", required=True,
                            help="built-in adapter name, module, module:attribute, path to a .py file, or entry point")
    p_identify.add_argument("--function", action="append", help="only this spec function (repeatable)")
    p_identify.add_argument("--dtype", default="float32", choices=["float64", "float32", "float16", "bfloat16"])
    p_identify.add_argument("--device", default="cpu", help="device the adapter computes on (cpu, cuda)")
    p_identify.add_argument("--timeout", type=seconds, default=60.0, help="seconds allowed per case (default 60)")
    p_identify.add_argument("--json", action="store_true", help="print the fingerprints as JSON")
    p_identify.set_defaults(handler=_cmd_identify)

    p_adapters = sub.add_parser("adapters", help="list the built-in adapters and whether each can run here")
    p_adapters.add_argument("--json", action="store_true")
    p_adapters.set_defaults(handler=_cmd_adapters)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 2
    try:
        return args.handler(args)
    except BrokenPipeError:  # output piped into a command that stopped reading (head, less)
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
