"""Run the course's benchmarks by name: ``python -m companion.bench NAME [options]``.

``python -m companion.bench --list`` names them; ``python -m companion.bench all`` runs every one with its
defaults and exits 1 if any target failed; ``all --json PATH`` also writes what each printed, its verdict and
its minutes to PATH (``make bench`` writes ``_build/results.json``, which the book's Results page shows).
The benchmarks live in :mod:`companion.benchmarks`.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import platform
import sys
import time
from pathlib import Path

from .benchmarks import BENCHMARKS

__all__ = ["main"]


def _usage() -> str:
    width = max(map(len, BENCHMARKS))
    lines = [f"  {name:<{width}}  {text}" for name, text in BENCHMARKS.items()]
    return ("usage: python -m companion.bench NAME [options]   (NAME --help for its options)\n"
            "       python -m companion.bench all [--json PATH]\n\nbenchmarks:\n" + "\n".join(lines))


def run(name: str, argv=()) -> int:
    """Run benchmark ``name`` with command-line ``argv``; return its exit code (0: every target met)."""
    if name not in BENCHMARKS:
        raise ValueError(f"Unknown benchmark: {name!r} (expected one of {', '.join(BENCHMARKS)})")
    module = importlib.import_module(f"companion.benchmarks.{name}")
    return int(module.main(list(argv)) or 0)


class _Tee(io.TextIOBase):
    """Write to the terminal and keep a copy (a benchmark prints as it goes; the record keeps the text)."""

    def __init__(self, stream):
        self.stream, self.kept = stream, io.StringIO()

    def write(self, text):
        self.kept.write(text)
        return self.stream.write(text)

    def flush(self):
        self.stream.flush()


def run_all(json_path=None) -> int:
    """Run every benchmark with its defaults; write the records to ``json_path`` if given; 1 if any failed."""
    records = []
    for each, what in BENCHMARKS.items():
        print(f"\n=== {each}: {what}", flush=True)
        tee, start = _Tee(sys.stdout), time.perf_counter()
        with contextlib.redirect_stdout(tee):
            try:
                code = run(each)
            except Exception as error:  # one broken benchmark (a missing framework, say) must not hide the others
                print(f"{each} stopped with {type(error).__name__}: {error}", flush=True)
                code = 1
        records.append({"name": each, "what": what, "passed": code == 0, "exit_code": code,
                        "minutes": round((time.perf_counter() - start) / 60, 2), "output": tee.kept.getvalue()})
    failed = [r["name"] for r in records if not r["passed"]]
    print("\nall benchmarks:", "PASS" if not failed else f"FAIL ({', '.join(failed)})")
    if json_path is not None:
        import torch

        result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.platform(),
                  "cpus": os.cpu_count(), "cuda": torch.cuda.is_available(), "torch": torch.__version__,
                  "benchmarks": records}
        json_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = json_path.with_name(json_path.name + ".part")
        tmp.write_text(json.dumps(result, indent=1), encoding="utf-8")
        os.replace(tmp, json_path)
        print(f"wrote {json_path}")
    return 1 if failed else 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "--list"):
        print(_usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name == "all":
        json_path = None
        if rest[:1] == ["--json"] and len(rest) == 2:
            json_path, rest = Path(rest[1]), []
        if rest:
            print(f"'all' runs every benchmark with its defaults; its only option is --json PATH (got {' '.join(rest)})",
                  file=sys.stderr)
            return 2
        return run_all(json_path)
    if name not in BENCHMARKS:
        print(f"unknown benchmark {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    return run(name, rest)


if __name__ == "__main__":
    sys.exit(main())
