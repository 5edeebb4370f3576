"""``python -m companion.bench optim``: the time of one Adam ``step()`` through the course's adapter.

:class:`~companion.optim.torch_adapter.ReferenceOptimizer` running ``companion.optim.adam`` against
``torch.optim.Adam`` (foreach implementation) on a model of about 10 million parameters, in the same
process, interleaved so that both see the same machine load, reported as a ratio. Exit 1 above the
target ratio (1.5 by default).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

__all__ = ["bench_optim", "main"]


def bench_optim(parameters: int = 10_000_000, repeats: int = 30, warmup: int = 5, device: str | None = None) -> dict:
    """Median seconds per Adam step of the adapter and of ``torch.optim.Adam(foreach=True)``."""
    import torch

    from ..optim import adam
    from ..optim.torch_adapter import ReferenceOptimizer
    from ..reproducibility import pick_device

    device = device or pick_device()
    torch.manual_seed(0)
    width = max(1, int((parameters / 2) ** 0.5))  # two square-ish layers hold ~`parameters` weights

    def make_model():
        model = torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.ReLU(), torch.nn.Linear(width, width))
        model.to(device)
        for p in model.parameters():
            p.grad = torch.randn_like(p) * 1e-3
        return model

    ours_model, torch_model = make_model(), make_model()
    count = sum(p.numel() for p in ours_model.parameters())
    ours = ReferenceOptimizer(ours_model.parameters(), adam(1e-3))
    theirs = torch.optim.Adam(torch_model.parameters(), lr=1e-3, foreach=True)

    def seconds(opt) -> float:
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    for _ in range(warmup):
        seconds(ours), seconds(theirs)
    times_ours, times_torch = [], []
    for _ in range(repeats):  # interleaved, so both see the same machine load
        times_ours.append(seconds(ours))
        times_torch.append(seconds(theirs))
    result = {
        "device": device,
        "parameters": count,
        "threads": torch.get_num_threads(),
        "reference_ms": 1e3 * statistics.median(times_ours),
        "torch_ms": 1e3 * statistics.median(times_torch),
    }
    result["ratio"] = result["reference_ms"] / result["torch_ms"]
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m companion.bench optim", description=__doc__.splitlines()[0])
    parser.add_argument("--parameters", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None)
    parser.add_argument("--target", type=float, default=1.5, help="largest acceptable ratio (exit 1 above it)")
    args = parser.parse_args(argv)
    r = bench_optim(args.parameters, args.repeats, device=args.device)
    print(f"Adam step on {r['parameters']:,} parameters ({r['device']}, {r['threads']} threads), median of {args.repeats}:")
    print(f"  companion ReferenceOptimizer(adam): {r['reference_ms']:8.2f} ms")
    print(f"  torch.optim.Adam(foreach=True):     {r['torch_ms']:8.2f} ms")
    print(f"  ratio: {r['ratio']:.2f}x (target: at most {args.target}x): {'PASS' if r['ratio'] <= args.target else 'FAIL'}")
    return 0 if r["ratio"] <= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
