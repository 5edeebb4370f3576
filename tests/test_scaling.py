"""Large batches and many processes: gradient accumulation, mixed precision in the one loop, LAMB,
data-parallel training under torchrun (companion.distributed), and the timing helper.

The distributed tests start real ``torchrun`` processes that talk over gloo on 127.0.0.1: two
processes on one node, and two single-process "nodes" joined by a c10d rendezvous, as on two hosts.
Both must end with the parameters of one process that trains on the whole global batch. In float64
the only difference is the order of the sums (the all-reduce adds the shards' mean gradients, one
process sums all examples), a relative rounding of about 1e-16 per step: after 20 steps the
parameters agree to 1e-12, which a single mis-sharded example or a missing average breaks by orders
of magnitude.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from companion import optim  # noqa: E402
from companion.distributed import DDPConfig, launch, train  # noqa: E402
from companion.timing import Timing, time_it  # noqa: E402
from companion.training import mlp, train_classifier  # noqa: E402

SMALL = DDPConfig(steps=20, global_batch=128, train=2048, hidden=64, dtype="float64")


def max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


@pytest.fixture(scope="module")
def single_process():
    return train(SMALL)


def test_training_moves_the_parameters(single_process):
    torch.manual_seed(SMALL.seed)
    start = mlp((784, SMALL.hidden, 10)).double().state_dict()
    assert max_difference(single_process["state_dict"], start) > 1e-2
    assert single_process["losses"][-1] < single_process["losses"][0] - 0.5


def test_a_failing_run_reports_the_log_of_each_node():
    with pytest.raises(RuntimeError, match="node 0"):
        launch(DDPConfig(**{**SMALL.__dict__, "device": "cuda"}) if not torch.cuda.is_available()
               else DDPConfig(**{**SMALL.__dict__, "train": 10**6}), nproc=2, timeout=120)


@pytest.mark.parametrize("nproc, nnodes", [(2, 1), (1, 2)], ids=["2-processes-1-node", "2-nodes-c10d"])
def test_ddp_under_torchrun_equals_one_process_on_the_global_batch(single_process, nproc, nnodes):
    result = launch(SMALL, nproc=nproc, nnodes=nnodes, timeout=120)
    assert result["world_size"] == 2 and result["backend"] == "gloo"
    assert max_difference(result["state_dict"], single_process["state_dict"]) < 1e-12
    # rank 0 saw only its half of each batch: its losses are not the single process's
    assert not np.allclose(result["losses"], single_process["losses"])


def test_a_mis_sharded_run_is_caught_by_the_same_tolerance(single_process):
    """The tolerance is tight enough to see one step of difference in the data."""
    other = train(DDPConfig(**{**SMALL.__dict__, "seed": 1}))
    assert max_difference(other["state_dict"], single_process["state_dict"]) > 1e-4
    half = train(DDPConfig(**{**SMALL.__dict__, "global_batch": 64}))  # each rank's half, never averaged
    assert max_difference(half["state_dict"], single_process["state_dict"]) > 1e-4


def test_gradient_accumulation_equals_the_large_batch(single_process):
    accumulated = train(DDPConfig(**{**SMALL.__dict__, "accumulation_steps": 4}))
    assert max_difference(accumulated["state_dict"], single_process["state_dict"]) < 1e-12


def test_accumulation_with_uneven_micro_batches_in_the_loop():
    """100 examples in micro-batches of 34, 33, 33: weighted by their shares, the step is the batch's."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(300, 12, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (300,), generator=gen)

    def run(k):
        torch.manual_seed(0)
        model = mlp((12, 16, 3)).double()
        history = train_classifier(model, optim.adam(0.01), x, y, batch_size=100, epochs=3, accumulation_steps=k,
                                   progress=False)
        return model.state_dict(), history.series("loss")[1]

    (whole, losses), (parts, part_losses) = run(1), run(3)
    assert max_difference(whole, parts) < 1e-12
    np.testing.assert_allclose(part_losses, losses, rtol=1e-12)  # the logged loss is the batch's mean too


def test_mixed_precision_trains_close_to_float32():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(512, 20, generator=gen)
    y = (x[:, 0] > 0).long()

    def run(precision):
        torch.manual_seed(0)
        model = mlp((20, 32, 2))
        history = train_classifier(model, optim.sgd(0.1, momentum=0.9), x, y, batch_size=64, epochs=5,
                                   precision=precision, progress=False)
        return model, history

    results = {p: run(p) for p in ("float32", "bfloat16", "float16")}
    base_model, base = results["float32"]
    for precision in ("bfloat16", "float16"):
        model, history = results[precision]
        assert all(p.dtype == torch.float32 for p in model.parameters())  # float32 master weights
        loss_gap = abs(history.last("train_loss") - base.last("train_loss"))
        assert 0 < loss_gap < 0.05, (precision, loss_gap)  # not the float32 run, but close to it
        assert history.last("train_loss") < 0.2


def test_float16_steps_whose_gradients_overflow_are_skipped_and_counted():
    """A loss scaled by 1,000 on top of GradScaler's first scale (65,536) overflows float16 (max 65,504)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(256, 20, generator=gen)
    y = (x[:, 0] > 0).long()
    torch.manual_seed(0)
    model = mlp((20, 32, 2))
    big_loss = lambda outputs, targets: 1000 * torch.nn.functional.cross_entropy(outputs, targets)  # noqa: E731
    history = train_classifier(model, optim.sgd(1e-4), x, y, batch_size=64, epochs=5, loss_fn=big_loss,
                               precision="float16", progress=False)
    skipped = history.meta["skipped_steps"]
    assert 1 <= skipped < 20
    assert all(torch.isfinite(p).all() for p in model.parameters())  # no inf ever reached the weights


def test_float16_without_loss_scaling_loses_small_gradients():
    """What the GradScaler is for: a gradient of 1e-8 is 0 in float16, and 1e-8 * 65536 is not."""
    small = torch.tensor(1e-8)
    assert small.half().item() == 0.0
    assert (small * 65536).half().float().item() / 65536 == pytest.approx(1e-8, rel=1e-2)
    assert torch.tensor(1e-8).bfloat16().item() == pytest.approx(1e-8, rel=1e-2)  # bfloat16 keeps float32's range


def test_lamb_in_the_torch_adapter_matches_the_reference_on_numpy():
    """LAMB's trust ratio is per tensor; torch tensors and NumPy arrays must give the same steps."""
    gen = np.random.default_rng(0)
    params = [gen.normal(size=(4, 3)), gen.normal(size=3), np.zeros(2)]  # a zero tensor: ratio 1
    opt = optim.lamb(0.01, weight_decay=0.1)
    state, values = opt.init(params), [p.copy() for p in params]
    tensors = [torch.tensor(p, requires_grad=True) for p in params]
    adapter = optim.torch_adapter.ReferenceOptimizer(tensors, optim.lamb(0.01, weight_decay=0.1))
    for _ in range(30):
        grads = [np.sin(3 * v) + v for v in values]
        updates, state = opt.update(grads, state, values)
        values = optim.apply_updates(values, updates)
        for t, g in zip(tensors, grads):
            t.grad = torch.tensor(g)
        adapter.step()
    for v, t in zip(values, tensors):
        np.testing.assert_allclose(t.detach().numpy(), v, rtol=1e-12, atol=1e-14)


def test_lamb_steps_have_the_size_of_the_weights_times_the_learning_rate():
    params = [np.full((10,), 3.0), np.full((5,), 0.01)]
    grads = [np.full((10,), 1e-3), np.full((5,), 100.0)]  # wildly different gradient scales
    opt = optim.lamb(0.1)
    updates, _ = opt.update(grads, opt.init(params), params)
    for p, u in zip(params, updates):
        assert np.linalg.norm(u) == pytest.approx(0.1 * np.linalg.norm(p), rel=1e-9)


def test_time_it_reports_the_median_of_repeats_after_warmup():
    calls = []
    timing = time_it(lambda: calls.append(1), repeats=7, warmup=2)
    assert len(calls) == 9 and len(timing.times) == 7
    fixed = Timing((1.0, 2.0, 3.0, 4.0, 100.0))
    assert fixed.median == 3.0 and fixed.q1 == 2.0 and fixed.q3 == 4.0 and fixed.iqr == 2.0


def test_bad_input_is_refused_with_the_argument_named():
    with pytest.raises(ValueError, match="global_batch"):
        train(SMALL, world_size=3)  # 128 is not divisible by 3
    with pytest.raises(ValueError, match="global_batch"):
        launch(SMALL, nproc=3)  # refused before any process starts
    with pytest.raises(ValueError, match="model_wrapper"):
        train(SMALL, world_size=2)  # shards without an all-reduce: not data parallelism
    with pytest.raises(ValueError, match="global_batch"):
        DDPConfig(global_batch=10_000, train=2048)
    with pytest.raises(ValueError, match="dtype"):
        DDPConfig(dtype="float16")
    with pytest.raises(ValueError, match="device"):
        DDPConfig(device="tpu")
    with pytest.raises(ValueError, match="learning_rate"):
        DDPConfig(learning_rate=-0.1)
    with pytest.raises(ValueError, match="nproc"):
        launch(SMALL, nproc=0)
    with pytest.raises(ValueError, match="repeats"):
        time_it(lambda: None, repeats=0)
    with pytest.raises(TypeError, match="fn"):
        time_it(None)
    x, y = torch.zeros(4, 3), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match="precision"):
        train_classifier(mlp((3, 2)), optim.sgd(0.1), x, y, precision="float8", progress=False)
    with pytest.raises(ValueError, match="accumulation_steps"):
        train_classifier(mlp((3, 2)), optim.sgd(0.1), x, y, accumulation_steps=0, progress=False)
    with pytest.raises(ValueError, match="learning_rate"):
        optim.lamb(-1.0)
