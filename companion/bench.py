"""Run the course's benchmarks by name: ``python -m companion.bench NAME [options]``.

``python -m companion.bench --list`` names them; ``python -m companion.bench all`` runs every one with its
defaults and exits 1 if any target failed. The benchmarks live in :mod:`companion.benchmarks`.
"""

from __future__ import annotations

import importlib
import sys

from .benchmarks import BENCHMARKS

__all__ = ["main"]


def _usage() -> str:
    width = max(map(len, BENCHMARKS))
    lines = [f"  {name:<{width}}  {text}" for name, text in BENCHMARKS.items()]
    return ("usage: python -m companion.bench NAME [options]   (NAME --help for its options)\n"
            "       python -m companion.bench all\n\nbenchmarks:\n" + "\n".join(lines))


def run(name: str, argv=()) -> int:
    """Run benchmark ``name`` with command-line ``argv``; return its exit code (0: every target met)."""
    if name not in BENCHMARKS:
        raise ValueError(f"Unknown benchmark: {name!r} (expected one of {', '.join(BENCHMARKS)})")
    module = importlib.import_module(f"companion.benchmarks.{name}")
    return int(module.main(list(argv)) or 0)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "--list"):
        print(_usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name == "all":
        if rest:
            print(f"'all' runs every benchmark with its defaults and takes no options (got {' '.join(rest)})", file=sys.stderr)
            return 2
        failed = []
        for each in BENCHMARKS:
            print(f"\n=== {each}: {BENCHMARKS[each]}", flush=True)
            try:
                code = run(each)
            except Exception as error:  # one broken benchmark (a missing framework, say) must not hide the others
                print(f"{each} stopped with {type(error).__name__}: {error}", flush=True)
                code = 1
            if code != 0:
                failed.append(each)
        print("\nall benchmarks:", "PASS" if not failed else f"FAIL ({', '.join(failed)})")
        return 1 if failed else 0
    if name not in BENCHMARKS:
        print(f"unknown benchmark {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    return run(name, rest)


if __name__ == "__main__":
    sys.exit(main())
