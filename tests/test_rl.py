"""companion.rl: replay buffer, TD targets, exploration schedule, evaluation, and short training runs."""

from __future__ import annotations

import numpy as np
import pytest

from companion.rl import DQNConfig, ReplayBuffer, epsilon_schedule, evaluate

torch = pytest.importorskip("torch")
pytest.importorskip("gymnasium")

from companion.rl import make_env  # noqa: E402
from companion.rl.dqn import q_network, soft_update, td_target, train_dqn  # noqa: E402


def fill(buffer, n, start=0):
    for i in range(start, start + n):
        buffer.add(np.full(3, i), i % 2, float(i), np.full(3, i + 1), i % 5 == 0)


# --------------------------------------------------------------------------- replay buffer


def test_buffer_stores_transitions_in_order():
    buffer = ReplayBuffer(10, obs_shape=(3,))
    fill(buffer, 4)
    assert len(buffer) == 4 and buffer.position == 4
    np.testing.assert_array_equal(buffer.rewards[:4], [0, 1, 2, 3])
    np.testing.assert_array_equal(buffer.next_observations[3], [4, 4, 4])
    np.testing.assert_array_equal(buffer.terminated[:4], [1, 0, 0, 0])


def test_buffer_wraps_around_and_overwrites_the_oldest():
    buffer = ReplayBuffer(5, obs_shape=(3,))
    fill(buffer, 7)  # transitions 0..6; 0 and 1 are overwritten by 5 and 6
    assert len(buffer) == 5 and buffer.position == 2
    np.testing.assert_array_equal(buffer.rewards, [5, 6, 2, 3, 4])
    np.testing.assert_array_equal(buffer.observations[:, 0], [5, 6, 2, 3, 4])
    np.testing.assert_array_equal(buffer.terminated, [1, 0, 0, 0, 0])


def test_sampling_is_uniform_over_stored_transitions_and_consistent():
    buffer = ReplayBuffer(50, obs_shape=(3,), seed=0)
    fill(buffer, 80)  # holds transitions 30..79
    batches = [buffer.sample(50) for _ in range(400)]
    batch = type(batches[0])(*(np.concatenate(field) for field in zip(*batches)))
    rewards = batch.rewards.astype(int)
    assert rewards.min() == 30 and rewards.max() == 79
    counts = np.bincount(rewards - 30, minlength=50)
    assert counts.min() > 300 and counts.max() < 500  # 400 expected per transition
    # the fields of one sampled row belong to the same transition
    np.testing.assert_array_equal(batch.observations[:, 0], batch.rewards)
    np.testing.assert_array_equal(batch.next_observations[:, 0], batch.rewards + 1)
    np.testing.assert_array_equal(batch.actions, rewards % 2)
    assert batch.observations.shape == (20_000, 3) and batch.observations.dtype == np.float32


def test_sampling_repeats_with_the_same_seed():
    a, b = ReplayBuffer(20, (3,), seed=1), ReplayBuffer(20, (3,), seed=1)
    fill(a, 20), fill(b, 20)
    np.testing.assert_array_equal(a.sample(8).rewards, b.sample(8).rewards)


@pytest.mark.parametrize("capacity", [0, -3])
def test_buffer_capacity_must_be_positive(capacity):
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(capacity, obs_shape=(4,))


def test_buffer_capacity_must_be_an_integer():
    with pytest.raises(TypeError, match="capacity"):
        ReplayBuffer(10.5, obs_shape=(4,))


def test_batch_larger_than_the_content_is_refused():
    buffer = ReplayBuffer(100, obs_shape=(3,))
    fill(buffer, 10)
    with pytest.raises(ValueError, match="batch_size"):
        buffer.sample(11)
    with pytest.raises(ValueError, match="batch_size"):
        ReplayBuffer(100, obs_shape=(3,)).sample(1)
    with pytest.raises(ValueError, match="batch_size"):
        buffer.sample(0)


def test_wrong_observation_shape_is_refused():
    buffer = ReplayBuffer(10, obs_shape=(4,))
    with pytest.raises(ValueError, match="obs has shape"):
        buffer.add(np.zeros(3), 0, 1.0, np.zeros(4), False)
    with pytest.raises(ValueError, match="next_obs has shape"):
        buffer.add(np.zeros(4), 0, 1.0, np.zeros((4, 1)), False)
    assert len(buffer) == 0  # nothing half-written


# --------------------------------------------------------------------------- targets


def test_td_target_terminated_does_not_bootstrap_truncated_does():
    # Three transitions with reward 1 and max_a' Q(s', a') = 10: an ordinary step, a terminal step
    # (the pole fell) and a truncated one (the 500-step time limit; stored with terminated = 0).
    rewards = torch.tensor([1.0, 1.0, 1.0])
    terminated = torch.tensor([0.0, 1.0, 0.0])
    next_q = torch.tensor([[10.0, 2.0], [10.0, 2.0], [3.0, 10.0]])
    y = td_target(rewards, terminated, next_q, gamma=0.9)
    torch.testing.assert_close(y, torch.tensor([10.0, 1.0, 10.0]))


def test_td_target_double_dqn_lets_the_online_network_choose():
    rewards = torch.tensor([0.0, 2.0])
    terminated = torch.tensor([0.0, 0.0])
    next_q_target = torch.tensor([[4.0, 8.0], [6.0, 1.0]])
    next_q_online = torch.tensor([[5.0, 1.0], [0.0, 3.0]])  # online prefers action 0, then 1
    y = td_target(rewards, terminated, next_q_target, 0.5, next_q_online=next_q_online)
    torch.testing.assert_close(y, torch.tensor([0.5 * 4.0, 2.0 + 0.5 * 1.0]))
    # without Double DQN the max of the target network is taken (an over-estimate here)
    torch.testing.assert_close(td_target(rewards, terminated, next_q_target, 0.5), torch.tensor([4.0, 5.0]))


def test_soft_update_hard_copy_and_polyak():
    torch.manual_seed(0)
    online, target = q_network(4, 2, (8,)), q_network(4, 2, (8,))
    before = [p.clone() for p in target.parameters()]
    soft_update(target, online, 0.25)
    for t, b, o in zip(target.parameters(), before, online.parameters()):
        torch.testing.assert_close(t, 0.25 * o + 0.75 * b)
    soft_update(target, online, 1.0)
    for t, o in zip(target.parameters(), online.parameters()):
        torch.testing.assert_close(t, o)


def test_q_network_shapes():
    net = q_network(4, 2, (16, 16))
    assert net(torch.zeros(5, 4)).shape == (5, 2)
    with pytest.raises(ValueError, match="n_actions"):
        q_network(4, 0)


# --------------------------------------------------------------------------- schedule, evaluation, config


def test_epsilon_schedule_decays_linearly_then_stays():
    eps = epsilon_schedule(1.0, 0.04, 1000)
    assert eps(0) == 1.0
    assert eps(500) == pytest.approx(0.52)
    assert eps(1000) == pytest.approx(0.04)
    assert eps(10**6) == pytest.approx(0.04)
    assert all(eps(t) >= eps(t + 1) for t in range(0, 1200, 7))


@pytest.mark.parametrize("kwargs, name", [({"duration": 0}, "duration"), ({"end": 1.5}, "end"), ({"start": -0.1}, "start")])
def test_epsilon_schedule_rejects_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        epsilon_schedule(**kwargs)


def test_evaluate_fixed_policies():
    env = make_env()
    always_left = evaluate(lambda obs: 0, env, episodes=5, seed=0)
    assert always_left.shape == (5,) and np.all(always_left < 20)  # the pole falls within ~10 steps
    # lean with the pole: a simple controller that keeps it up much longer
    lean = evaluate(lambda obs: int(obs[2] + 0.5 * obs[3] > 0), env, episodes=5, seed=0)
    assert lean.mean() > 5 * always_left.mean()
    np.testing.assert_array_equal(lean, evaluate(lambda obs: int(obs[2] + 0.5 * obs[3] > 0), env, 5, seed=0))
    with pytest.raises(ValueError, match="episodes"):
        evaluate(lambda obs: 0, env, episodes=0)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"buffer_size": 0}, "buffer_size"), ({"gamma": 1.5}, "gamma"), ({"learning_rate": 0.0}, "learning_rate"),
     ({"batch_size": 512, "buffer_size": 100}, "batch_size"), ({"tau": 0.0}, "tau")],
)
def test_config_rejects_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        DQNConfig(**kwargs)


# --------------------------------------------------------------------------- training


SMOKE = dict(total_steps=4_000, learning_starts=500, train_every=64, gradient_steps=32, target_update_every=32,
             hidden=(64, 64), eval_every=1_000, eval_episodes=3, buffer_size=5_000, exploration_fraction=0.3)


def test_training_smoke_run_learns_and_repeats():
    runs = [train_dqn(DQNConfig(seed=3, **SMOKE), progress=False) for _ in range(2)]
    h = runs[0].history
    assert {"episode_return", "eval_return", "loss", "epsilon"} <= set(h.keys())
    assert runs[0].env_steps == 4_000 and np.all(np.isfinite(h.series("loss")[1]))
    # early episodes are random (about 20 steps); the greedy policy after 4,000 steps balances far longer
    first = h.series("episode_return")[1][:20].mean()
    assert h.series("eval_return")[1].max() > 4 * first
    # same seed, same everything
    np.testing.assert_array_equal(h.series("episode_return")[1], runs[1].history.series("episode_return")[1])
    np.testing.assert_array_equal(h.series("loss")[1], runs[1].history.series("loss")[1])
    for a, b in zip(runs[0].q_network.parameters(), runs[1].q_network.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_training_restores_the_thread_count_even_when_it_fails():
    before = torch.get_num_threads()
    target = 1 if before != 1 else 2
    run = train_dqn(DQNConfig(seed=0, threads=target, **{**SMOKE, "total_steps": 600, "eval_every": 0}), progress=False)
    assert torch.get_num_threads() == before and run.policy()(np.zeros(4, dtype=np.float32)) in (0, 1)
    with pytest.raises(Exception):
        train_dqn(DQNConfig(seed=0, threads=target, env_id="NoSuchEnv-v0"), progress=False)
    assert torch.get_num_threads() == before


def test_training_switches_run():
    for kwargs in ({"double_dqn": True, "tau": 0.5}, {"target_network": False}):
        run = train_dqn(DQNConfig(seed=0, **{**SMOKE, "total_steps": 1_000, "eval_every": 0}, **kwargs), progress=False)
        assert run.env_steps == 1_000 and np.all(np.isfinite(run.history.series("loss")[1]))


def test_keras_agent_smoke_run():
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the Keras agent needs the TensorFlow backend")
    from companion.rl.keras_dqn import train_keras_dqn

    run = train_keras_dqn(DQNConfig(seed=0, **{**SMOKE, "total_steps": 1_000, "eval_every": 1_000, "double_dqn": True}), progress=False)
    assert run.env_steps == 1_000 and np.all(np.isfinite(run.history.series("loss")[1]))
    assert run.history.series("eval_return")[1].shape == (1,)
    assert run.policy()(np.zeros(4, dtype=np.float32)) in (0, 1)
    from companion.rl import DQNRun

    assert type(run) is DQNRun  # one run type for both frameworks
