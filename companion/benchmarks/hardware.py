"""``python -m companion.bench hardware``: the levers of Part VI measured in one run, on this machine's device.

Prints, with the device named (a CUDA GPU when PyTorch sees one, else the CPU and its core count):

* eager against ``torch.compile`` for one training step of the 784-512-512-10 MLP at batch 256: the
  median step time of each (warm-up excluded) and the compilation time, measured cold;
* float32 against ``torch.autocast`` to bfloat16 (and float16 with a ``GradScaler`` on a GPU): median
  step time;
* ``DataLoader`` with 0 against 2 workers over an augmented MNIST epoch with the training steps
  (the second epoch of persistent workers; the training process at one thread while workers run on a
  CPU, as in the chapter);
* data-parallel training under ``torchrun`` with 1 against 2 processes (``companion.distributed``):
  images per second of each, and their ratio.

Speed is hardware's, so the speed figures are reported, not judged. The targets are correctness
checks that must hold on any machine: the compiled model computes the eager model's loss (to 1e-4),
the bfloat16 loss is within 2% of float32's on the same batch, and the parameters after two-process
training equal one process's on the same global batch (to 1e-5, float32 rounding). Exit code 1 if
one fails.
"""

from __future__ import annotations

import argparse
import time

__all__ = ["bench_hardware", "main"]


def bench_hardware(*, ddp_steps: int = 60, report=print) -> dict:
    """Run the measurements; return ``{"figures": {...}, "failed": [...]}``."""
    import torch
    import torch.nn.functional as F

    from ..augment import AugmentedImages
    from ..distributed import DDPConfig, launch
    from ..reproducibility import pick_device
    from ..timing import describe_device, time_it
    from ..training import mlp, mnist_tensors

    device = pick_device()
    report(f"device: {describe_device(device)}, {torch.get_num_threads()} threads")
    data = mnist_tensors(8_192, test=0, device=device)
    x, y = data.x_train[:256], data.y_train[:256]
    figures, failed = {}, []

    def step_fn(model, precision="float32"):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        kind = torch.device(device).type
        scaler = torch.amp.GradScaler(kind, enabled=precision == "float16")

        def step():
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(kind, dtype=getattr(torch, precision), enabled=precision != "float32"):
                loss = F.cross_entropy(model(x), y)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

        return step

    def fresh():
        torch.manual_seed(0)
        return mlp((784, 512, 512, 10)).to(device)

    # eager against torch.compile
    import torch._inductor.config

    torch._inductor.config.force_disable_caches = True
    eager_model, compiled_model = fresh(), torch.compile(fresh())
    with torch.no_grad():
        eager_loss = F.cross_entropy(eager_model(x), y).item()
        start = time.perf_counter()
        compiled_loss = F.cross_entropy(compiled_model(x), y).item()
    compiled_step = step_fn(compiled_model)
    compiled_step()  # compiles the training graphs
    compile_seconds = time.perf_counter() - start
    eager = time_it(step_fn(eager_model), repeats=30, warmup=3)
    compiled = time_it(compiled_step, repeats=30, warmup=3)
    figures["compile_speedup"] = eager.median / compiled.median
    report(f"eager step {eager}; compiled step {compiled}: {figures['compile_speedup']:.2f}x, "
           f"compilation {compile_seconds:.1f} s")
    if abs(compiled_loss - eager_loss) > 1e-4:
        failed.append(f"torch.compile loss {compiled_loss:.6f} != eager {eager_loss:.6f}")

    # float32 against autocast
    precisions = ("float32", "bfloat16") + (("float16",) if device == "cuda" else ())
    timings = {p: time_it(step_fn(fresh(), p), repeats=20, warmup=3) for p in precisions}
    for p in precisions[1:]:
        figures[f"{p}_speedup"] = timings["float32"].median / timings[p].median
        report(f"{p} autocast step {timings[p]} against float32 {timings['float32']}: {figures[f'{p}_speedup']:.2f}x")
    model = fresh()
    with torch.no_grad():
        full = F.cross_entropy(model(x), y).item()
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16):
            half = F.cross_entropy(model(x), y).item()
    if abs(half - full) > 0.02 * full:
        failed.append(f"bfloat16 loss {half:.4f} more than 2% from float32's {full:.4f}")

    # DataLoader workers
    augmented = AugmentedImages(data.x_train.cpu().numpy(), data.y_train.cpu().numpy())

    def epoch_seconds(workers):
        model = fresh()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        loader = torch.utils.data.DataLoader(augmented, batch_size=256, shuffle=True, num_workers=workers,
                                             persistent_workers=workers > 0, pin_memory=device == "cuda")
        threads = torch.get_num_threads()
        if workers and device == "cpu":
            torch.set_num_threads(1)
        try:
            for _ in range(2):
                start = time.perf_counter()
                for batch_images, batch_labels in loader:
                    optimizer.zero_grad(set_to_none=True)
                    F.cross_entropy(model(batch_images.to(device)), batch_labels.to(device)).backward()
                    optimizer.step()
                if device == "cuda":
                    torch.cuda.synchronize()
                seconds = time.perf_counter() - start
        finally:
            torch.set_num_threads(threads)
            del loader
        return seconds

    serial, parallel = epoch_seconds(0), epoch_seconds(2)
    figures["dataloader_speedup"] = serial / parallel
    report(f"DataLoader epoch: 0 workers {serial:.2f} s, 2 workers {parallel:.2f} s: {figures['dataloader_speedup']:.2f}x")

    # 1 against 2 DDP processes
    # both runs on GPUs only when each of the two processes has one; otherwise both on the CPU
    ddp_device = "cuda" if torch.cuda.device_count() >= 2 else "cpu"
    config = DDPConfig(steps=ddp_steps, global_batch=256, train=16_384, hidden=256, device=ddp_device)
    one, two = launch(config, nproc=1), launch(config, nproc=2)
    figures["ddp_throughput_ratio"] = two["examples_per_second"] / one["examples_per_second"]
    difference = max((one["state_dict"][k] - two["state_dict"][k]).abs().max().item() for k in one["state_dict"])
    report(f"DDP ({two['backend']}, {two['device']}): 1 process {one['examples_per_second']:,.0f} images/s, "
           f"2 processes {two['examples_per_second']:,.0f} images/s: {figures['ddp_throughput_ratio']:.2f}x; "
           f"largest parameter difference {difference:.1e}")
    if difference > 1e-5:
        failed.append(f"2-process parameters differ from 1 process by {difference:.1e}")
    return {"figures": figures, "failed": failed}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m companion.bench hardware", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ddp-steps", type=int, default=60, help="training steps of each DDP run (default 60)")
    args = parser.parse_args(argv)
    if args.ddp_steps < 1:
        parser.error(f"--ddp-steps must be >= 1, got {args.ddp_steps}")
    results = bench_hardware(ddp_steps=args.ddp_steps)
    print("hardware:", "PASS" if not results["failed"] else f"FAIL ({'; '.join(results['failed'])})")
    return 1 if results["failed"] else 0
