r"""The same DQN in Keras 3 (TensorFlow backend): the working version of the popular Keras snippet.

The algorithm and the hyperparameters are those of :mod:`companion.rl.dqn` (see there for the math):
replay buffer, target network, epsilon-greedy exploration, Huber loss, Adam with gradient clipping,
optional Double DQN. What differs from the snippet is how Keras is called: the network is applied
as ``model(x, training=False)`` inside a ``tf.function`` (``model.predict`` builds a dataset and a
prediction loop on every call, about a thousand times slower for one observation), and one compiled
``train_step`` does a gradient step on a mini-batch instead of ``model.fit`` on one transition.
Checked by ``python -m companion.bench dqn`` (solves CartPole-v1) and a smoke test in ``tests/test_rl.py``.
"""

from __future__ import annotations

import time
from dataclasses import asdict

import numpy as np

from ..history import History
from .config import DQNConfig, DQNRun
from .evaluation import check_discrete_actions, epsilon_schedule, evaluate, make_env
from .replay import ReplayBuffer

__all__ = ["DQNRun", "keras_greedy_policy", "keras_q_network", "train_keras_dqn"]


def _keras():
    from ..quiet import quiet_tensorflow

    with quiet_tensorflow():
        import keras

    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(f"companion.rl.keras_dqn needs the TensorFlow backend of Keras, not {keras.backend.backend()!r}")
    import tensorflow as tf

    return keras, tf


def keras_q_network(obs_dim: int, n_actions: int, hidden=(256, 256)):
    """A Keras MLP ``obs -> Q(obs, a) for every a`` (linear output layer)."""
    keras, _ = _keras()
    layers = [keras.Input((obs_dim,))]
    layers += [keras.layers.Dense(h, activation="relu") for h in hidden]
    layers.append(keras.layers.Dense(n_actions))
    return keras.Sequential(layers)


def keras_greedy_policy(q):
    """``obs -> argmax_a Q(obs, a)``: one compiled call per step, no ``predict``."""
    _, tf = _keras()

    @tf.function
    def best_action(x):
        return tf.argmax(q(x, training=False), axis=1)[0]

    def policy(obs) -> int:
        return int(best_action(np.asarray(obs, dtype=np.float32)[None]))

    return policy


def train_keras_dqn(config: DQNConfig | None = None, *, progress: bool = True, name: str | None = None) -> DQNRun:
    """Train the Keras DQN agent; same loop, same hyperparameters as :func:`companion.rl.dqn.train_dqn`."""
    from ..progress import progress_bar

    keras, tf = _keras()
    cfg = config or DQNConfig()
    keras.utils.set_random_seed(cfg.seed)  # Python, NumPy and TensorFlow
    rng = np.random.default_rng(cfg.seed)
    env, eval_env = make_env(cfg.env_id), make_env(cfg.env_id)
    obs_dim, n_actions = env.observation_space.shape[0], check_discrete_actions(env)

    q = keras_q_network(obs_dim, n_actions, cfg.hidden)
    target = keras_q_network(obs_dim, n_actions, cfg.hidden) if cfg.target_network else q
    target.set_weights(q.get_weights())
    optimizer = keras.optimizers.Adam(learning_rate=cfg.learning_rate, global_clipnorm=cfg.max_grad_norm)
    huber = keras.losses.Huber(delta=1.0)
    buffer = ReplayBuffer(cfg.buffer_size, env.observation_space.shape, rng=rng)
    epsilon = epsilon_schedule(cfg.epsilon_start, cfg.epsilon_end, max(1, int(cfg.exploration_fraction * cfg.total_steps)))
    act = keras_greedy_policy(q)
    gamma = tf.constant(cfg.gamma, tf.float32)
    history = History(name or f"Keras DQN seed {cfg.seed}")
    history.meta["config"] = asdict(cfg)

    @tf.function
    def train_step(obs, actions, rewards, next_obs, terminated):
        next_q = target(next_obs, training=False)
        if cfg.double_dqn:  # the online network chooses a', the target network values it
            best = tf.argmax(q(next_obs, training=False), axis=1)
            next_value = tf.gather(next_q, best, axis=1, batch_dims=1)
        else:
            next_value = tf.reduce_max(next_q, axis=1)
        y = tf.stop_gradient(rewards + gamma * (1.0 - terminated) * next_value)
        with tf.GradientTape() as tape:
            q_taken = tf.gather(q(obs, training=True), actions, axis=1, batch_dims=1)
            loss = huber(y, q_taken)
        grads = tape.gradient(loss, q.trainable_variables)
        optimizer.apply_gradients(zip(grads, q.trainable_variables))
        return loss

    @tf.function
    def update_target(tau):
        for t, o in zip(target.trainable_variables, q.trainable_variables):
            t.assign(tau * o + (1.0 - tau) * t)

    best_return, best_weights, solved_at, updates = -np.inf, None, None, 0
    obs, _ = env.reset(seed=cfg.seed)
    episode_return, start = 0.0, time.perf_counter()
    bar = progress_bar(cfg.total_steps, history.name, enabled=progress)
    for step in range(1, cfg.total_steps + 1):
        eps = epsilon(step)
        action = int(rng.integers(n_actions)) if rng.random() < eps else act(obs)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        buffer.add(obs, action, reward, next_obs, terminated)
        obs, episode_return = next_obs, episode_return + reward
        if terminated or truncated:
            history.log(step, episode_return=episode_return, epsilon=eps)
            obs, _ = env.reset()
            episode_return = 0.0

        if step > cfg.learning_starts and step % cfg.train_every == 0 and len(buffer) >= cfg.batch_size:
            losses = []
            for _ in range(cfg.gradient_steps):
                b = buffer.sample(cfg.batch_size)
                losses.append(train_step(b.observations, b.actions, b.rewards, b.next_observations, b.terminated))
                updates += 1
                if cfg.target_network and updates % cfg.target_update_every == 0:
                    update_target(tf.constant(cfg.tau, tf.float32))
            history.log(step, loss=float(np.mean([float(v) for v in losses])), seconds=time.perf_counter() - start)

        if cfg.eval_every and step % cfg.eval_every == 0:
            mean_return = float(evaluate(act, eval_env, cfg.eval_episodes, seed=10_000 + cfg.seed).mean())
            history.log(step, eval_return=mean_return)
            if mean_return > best_return:
                best_return, best_weights = mean_return, q.get_weights()
            bar.set_postfix(eval_return=f"{mean_return:.0f}", refresh=False)
            if mean_return >= cfg.solved_return and solved_at is None:
                solved_at = step
                if cfg.stop_when_solved:
                    bar.update(step - bar.n)
                    break
        if step % 500 == 0:
            bar.update(step - bar.n)
    bar.close()
    env.close(), eval_env.close()
    if best_weights is not None:
        q.set_weights(best_weights)
    seconds = time.perf_counter() - start
    history.meta.update(solved_at=solved_at, best_eval_return=best_return, seconds=seconds)
    return DQNRun(q, history, cfg, solved_at, step, seconds, greedy_policy=keras_greedy_policy)
