r"""Data-parallel training with PyTorch's own machinery: ``torchrun``, ``torch.distributed``, DDP.

Each of the :math:`W` processes (ranks) holds a full copy of the model and takes its share
:math:`B_r` of every global mini-batch :math:`B` (:math:`|B_r| = |B|/W`). After the backward pass,
``DistributedDataParallel`` averages the gradients over the ranks with an all-reduce,

.. math:: g_t = \frac{1}{W} \sum_{r=1}^{W} \nabla_\theta J(\theta_t; B_r)
    = \nabla_\theta J(\theta_t; B) \quad\text{when the shards are of equal size,}

so every rank takes the same optimizer step, and the parameters after :math:`N` steps equal those of
one process training on the whole global batch, up to the rounding of a sum taken in another order.

Run the entry point under ``torchrun`` (one machine, two processes)::

    torchrun --standalone --nproc-per-node=2 -m companion.distributed --steps 50 --out result.pt

or on two machines (run on each, with the first machine's address)::

    torchrun --nnodes=2 --nproc-per-node=1 --rdzv-backend=c10d --rdzv-endpoint=HOST:29500 \
        --rdzv-id=mnist -m companion.distributed --steps 50 --out result.pt

:func:`launch` starts either from Python (the second as two local "nodes" on 127.0.0.1), and
:func:`train` runs the same training in the current process, the single-process reference. The
model is the course's MNIST MLP, trained with the course's SGD with momentum through
:func:`companion.training.train_classifier`. The backend is NCCL when every rank has a GPU of its
own, gloo otherwise.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ._checks import check_choice, check_in_range, check_positive, check_positive_int

__all__ = ["DDPConfig", "free_port", "launch", "main", "train"]

DTYPES = ("float32", "float64")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class DDPConfig:
    """One data-parallel run: the first ``train`` MNIST images, ``steps`` steps of ``global_batch`` images."""

    steps: int = 50
    global_batch: int = 256
    train: int = 8192
    hidden: int = 256
    learning_rate: float = 0.05
    momentum: float = 0.9
    accumulation_steps: int = 1
    dtype: str = "float32"
    seed: int = 0
    device: str = "auto"  #: "auto" (a GPU per rank when there are enough, else the CPU), "cpu" or "cuda"

    def __post_init__(self):
        for name in ("steps", "global_batch", "train", "hidden", "accumulation_steps"):
            check_positive_int(name, getattr(self, name))
        check_positive("learning_rate", self.learning_rate)
        check_in_range("momentum", self.momentum, 0.0, 1.0)
        check_choice("dtype", self.dtype, DTYPES)
        check_choice("device", self.device, DEVICES)
        if self.global_batch > self.train:
            raise ValueError(f"Invalid global_batch: {self.global_batch} (larger than the {self.train} training images)")


def _global_batches(config: DDPConfig):
    """Every step's global mini-batch (indices), the same on every rank: epochs of shuffled full batches."""
    from .training import batches

    per_epoch = config.train // config.global_batch
    epochs = -(-config.steps // per_epoch)
    plan = list(batches(config.train, config.global_batch, seed=config.seed, epochs=epochs, drop_last=True))
    return plan[: config.steps]


def _check_divisible(config: DDPConfig, world_size: int) -> None:
    if config.global_batch % world_size:
        raise ValueError(f"Invalid global_batch: {config.global_batch} (not divisible by the {world_size} processes: "
                         "unequal shards would weight their examples unequally)")


def train(config: DDPConfig = DDPConfig(), *, rank: int = 0, world_size: int = 1, model_wrapper=None,
          device: str | None = None) -> dict:
    """Train the MLP on rank ``rank``'s shard of every global batch; return the result (see :func:`launch`).

    With ``world_size=1`` (the default) this is plain single-process training on the whole global
    batch, on ``device`` (default: ``config.device``, "auto" meaning the GPU when there is one). Under
    ``torchrun``, :func:`main` calls it with the process group initialized and
    ``model_wrapper=DistributedDataParallel``, which averages the gradients over the ranks.
    """
    import torch

    from . import optim
    from .training import mlp, mnist_tensors, train_classifier

    _check_divisible(config, world_size)
    if world_size > 1 and model_wrapper is None:
        raise ValueError(f"world_size={world_size} needs a model_wrapper that averages the gradients over the ranks "
                         "(DistributedDataParallel): without it each rank would train on its shard alone")
    if device is None:
        device = "cuda" if config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available()) \
            else "cpu"
    dtype = getattr(torch, config.dtype)
    data = mnist_tensors(config.train, test=0, shape="flat", device=device)
    x_train = data.x_train.to(dtype)
    torch.manual_seed(config.seed)
    model = mlp((784, config.hidden, 10)).to(device=device, dtype=dtype)
    network = model_wrapper(model) if model_wrapper is not None else model
    plan = _global_batches(config)

    def shards(epoch):  # this rank's share of each global batch of the epoch: every world_size-th example
        return [index[rank::world_size].numpy() for e, index in plan if e == epoch]

    optimizer = optim.sgd(config.learning_rate, momentum=config.momentum)
    start = time.perf_counter()
    history = train_classifier(network, optimizer, x_train, data.y_train, sampler=shards, epochs=plan[-1][0] + 1,
                               max_steps=config.steps, accumulation_steps=config.accumulation_steps,
                               seed=config.seed, progress=False)
    seconds = time.perf_counter() - start
    return {
        "config": asdict(config),
        "world_size": world_size,
        "device": device,
        "steps": config.steps,
        "seconds": seconds,
        "examples_per_second": config.steps * config.global_batch / seconds,
        "losses": history.series("loss")[1].tolist(),  # this rank's shard losses
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }


def _rank_device(choice: str = "auto") -> str:
    """This process's device: a GPU of its own when this machine has one per local process, else the CPU."""
    import torch

    local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    enough = torch.cuda.is_available() and torch.cuda.device_count() >= local_processes
    if choice == "cuda" and not enough:
        raise ValueError(f"Invalid device: 'cuda' needs a GPU per process on this machine ({local_processes}), "
                         f"found {torch.cuda.device_count()}")
    if choice != "cpu" and enough:
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local_rank)
        return f"cuda:{local_rank}"
    return "cpu"


def _atomic_save(obj, path: Path) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".part")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv=None) -> int:
    """Entry point for ``torchrun ... -m companion.distributed``: train with DDP, rank 0 saves ``--out``."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    parser = argparse.ArgumentParser(prog="python -m companion.distributed",
                                     description="Data-parallel MNIST MLP; run it under torchrun.")
    defaults = DDPConfig()
    for name, value in asdict(defaults).items():
        parser.add_argument("--" + name.replace("_", "-"), type=type(value), default=value)
    parser.add_argument("--out", type=Path, required=True, help="where rank 0 writes the result (torch.save)")
    args = vars(parser.parse_args(argv))
    out = args.pop("out")
    config = DDPConfig(**args)

    if "RANK" not in os.environ:
        parser.error("run me under torchrun (RANK, WORLD_SIZE and MASTER_ADDR are not set)")
    world_size = int(os.environ["WORLD_SIZE"])
    device = _rank_device(config.device)
    dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    try:
        rank = dist.get_rank()
        wrapper = (lambda m: DistributedDataParallel(m, device_ids=[torch.device(device).index])) if device != "cpu" \
            else DistributedDataParallel
        result = train(config, rank=rank, world_size=world_size, model_wrapper=wrapper, device=device)
        result["backend"] = dist.get_backend()
        result["hosts"] = [None] * world_size
        dist.all_gather_object(result["hosts"], socket.gethostname())
        seconds = torch.tensor([result["seconds"]], dtype=torch.float64, device=device)  # NCCL: on the GPU
        dist.all_reduce(seconds, op=dist.ReduceOp.MAX)  # the run lasts as long as its slowest rank
        result["seconds"] = seconds.item()
        result["examples_per_second"] = config.steps * config.global_batch / result["seconds"]
        if rank == 0:
            _atomic_save(result, out)
    finally:
        dist.destroy_process_group()
    return 0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(arguments, script_arguments, env, log):
    command = [sys.executable, "-m", "torch.distributed.run", *arguments, "-m", "companion.distributed",
               *script_arguments]
    # a session of its own: on a timeout the whole group (torchrun and its workers) is stopped
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(process) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def launch(config: DDPConfig = DDPConfig(), *, nproc: int = 2, nnodes: int = 1, timeout: float = 300,
           threads_per_process: int | None = None) -> dict:
    """Run :func:`main` under ``torchrun`` and return rank 0's result.

    ``nnodes=1``: one ``torchrun --standalone --nproc-per-node=nproc``. ``nnodes=2`` or more: one
    ``torchrun --nnodes=N --rdzv-backend=c10d --rdzv-endpoint=127.0.0.1:PORT`` per "node", all on this
    machine: the commands two real hosts would run, with the first host's address instead. Each
    process gets ``threads_per_process`` intra-op threads (default: the cores shared out evenly).

    The result: ``state_dict`` (the parameters after training, on the CPU), ``seconds`` (the slowest
    rank's training time), ``examples_per_second``, ``losses`` (rank 0's shard losses), ``world_size``,
    ``backend``, ``hosts``, ``device``, ``config``.
    """
    import torch

    nproc = check_positive_int("nproc", nproc)
    nnodes = check_positive_int("nnodes", nnodes)
    check_positive("timeout", timeout)
    world_size = nproc * nnodes
    _check_divisible(config, world_size)
    if threads_per_process is None:
        threads_per_process = max(1, (os.cpu_count() or 1) // world_size)
    threads_per_process = check_positive_int("threads_per_process", threads_per_process)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads_per_process))
    with tempfile.TemporaryDirectory(prefix="ddp-") as folder:
        out = Path(folder) / "result.pt"
        options = [f"--{k.replace('_', '-')}={v}" for k, v in asdict(config).items()] + [f"--out={out}"]
        if nnodes == 1:
            commands = [["--standalone", f"--nproc-per-node={nproc}"]]
        else:
            rendezvous = [f"--nnodes={nnodes}", f"--nproc-per-node={nproc}", "--rdzv-backend=c10d",
                          f"--rdzv-endpoint=127.0.0.1:{free_port()}", f"--rdzv-id=companion-{os.getpid()}"]
            commands = [rendezvous] * nnodes
        node_envs = [env] * len(commands)
        if nnodes > 1:  # "nodes" sharing this machine: each gets GPUs of its own, or none (then gloo on the CPU)
            gpus = torch.cuda.device_count()
            node_envs = [dict(env, CUDA_VISIBLE_DEVICES=",".join(str(g) for g in range(i * nproc, (i + 1) * nproc))
                              if gpus >= world_size else "") for i in range(nnodes)]
        logs = [open(Path(folder) / f"node{i}.log", "w+") for i in range(len(commands))]
        processes = [_torchrun(arguments, options, node_env, log)
                     for arguments, node_env, log in zip(commands, node_envs, logs)]
        deadline = time.monotonic() + timeout
        try:
            for process in processes:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for process in processes:
                _stop(process)
            raise RuntimeError(f"torchrun did not finish within {timeout} s:\n{_tails(processes, logs)}") from None
        finally:
            for process in processes:
                if process.poll() is None:
                    _stop(process)
        if any(p.returncode != 0 for p in processes) or not out.exists():
            raise RuntimeError(f"torchrun failed:\n{_tails(processes, logs)}")
        for log in logs:
            log.close()
        return torch.load(out, weights_only=False)


def _tails(processes, logs) -> str:
    """The end of each node's log, with its exit code."""
    parts = []
    for i, (process, log) in enumerate(zip(processes, logs)):
        log.flush()
        log.seek(0)
        parts.append(f"--- node {i} (exit code {process.returncode}):\n{log.read()[-2000:]}")
    return "\n".join(parts)


if __name__ == "__main__":
    sys.exit(main())
