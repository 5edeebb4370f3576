# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 2. Deep Q-learning on CartPole
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/YOUR-ORG/dl-optimization-hands-on/blob/main/book/part4_applications/02_dqn_cartpole.ipynb)
#
# Reinforcement learning turns optimization on its head: there is no data set and no fixed loss.
# The network's own predictions decide which data it sees next, and its regression target is built
# from its own outputs. A Deep Q-Network {cite}`mnih2015` is gradient descent on a moving target,
# and the two ideas that make it work, *experience replay* and a *target network*, are
# optimization fixes: they make the training data look more like i.i.d. samples and the target hold
# still long enough to be fitted.
#
# The most copied Keras snippet for CartPole leaves both out and trains on one transition at a time
# with `model.predict` inside the loop. It learns next to nothing, and each environment step takes
# tens to hundreds of milliseconds. This chapter runs it, then builds the real thing and watches it
# balance the pole for the full 500 steps after {glue:text}`dqn_cpu_s` of CPU time on the machine
# that built this page.
#
# This chapter covers
#
# * the CartPole problem in gymnasium's API: observations, actions, rewards, and the difference
#   between an episode that *terminates* and one that is *truncated*;
# * the Q-learning target {cite}`watkins1992` and why a neural Q-function needs replay {cite}`lin1992`
#   and a target network {cite}`mnih2015`; Double DQN {cite}`vanhasselt2016`;
# * the popular snippet, measured; the DQN of `companion.rl`, in PyTorch and in Keras;
# * learning curves, a greedy evaluation, and the trained agent on video.

# %% tags=["hide-input"]
# Setup: on Colab (or anywhere companion is missing) install the course package.
try:
    import companion
except ImportError:
    %pip install -q "dl-optimization-companion[torch,keras,rl] @ git+https://github.com/YOUR-ORG/dl-optimization-hands-on@main"
    import companion

# %% tags=["keep-when-grading"]
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # draw frames in memory, never open a window

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Image, display
from PIL import Image as PILImage

from companion.glue import glue
from companion.plotting import plot_histories, use_course_style
from companion.reproducibility import pick_device, seed_everything
from companion.rl import DQNConfig, ReplayBuffer, epsilon_schedule, evaluate, make_env, record_frames
from companion.rl.dqn import td_target, train_dqn

use_course_style()
seed_everything(0)
device = pick_device()
print("device:", device)

# %% [markdown]
# ## The problem
#
# A pole is hinged on a cart that moves along a track. Every step the agent pushes the cart left
# (action 0) or right (action 1) and gets a reward of $+1$ for every step the pole stays up. The
# observation is $s = (x, \dot x, \theta, \dot\theta)$: the cart's position and velocity, the pole's
# angle and angular velocity. Gymnasium's `env.step(action)` returns five things:
#
# * `observation`, `reward`;
# * `terminated`: the episode reached a *terminal state* of the task: the pole tilted more than 12°
#   or the cart left the track. Nothing follows; the value of that state is zero.
# * `truncated`: the episode was *cut* by a time limit that is not part of the task, here after 500
#   steps. The pole is still up, and the state has a value like any other; only our patience ran out.
#
# The distinction matters for learning (below). CartPole-v1 counts as *solved* when the mean
# return over many episodes reaches 475, and 500 is the maximum. A random policy gets about 20:

# %%
env = make_env("CartPole-v1")
obs, info = env.reset(seed=0)
print("observation:", obs, " actions:", env.action_space)
obs, reward, terminated, truncated, info = env.step(1)
print(f"after one push to the right: reward={reward}, terminated={terminated}, truncated={truncated}")

rng = np.random.default_rng(0)
random_returns = evaluate(lambda obs: int(rng.integers(2)), env, episodes=200, seed=0)

fig, ax = plt.subplots()
ax.hist(random_returns, bins=30, color="tab:gray", label=f"random policy, mean {random_returns.mean():.0f}")
ax.axvline(475, color="tab:green", ls="--", label="solved (mean 475)")
ax.set_xlabel("episode return (steps the pole stays up)")
ax.set_ylabel("episodes (of 200)")
ax.set_title("A random policy keeps the pole up for about 20 steps")
ax.legend()
plt.show()

# %% tags=["remove-input"]
assert 15 < random_returns.mean() < 30 and random_returns.max() < 150

# %% [markdown]
# ## From Q-learning to DQN
#
# The action value $Q^\pi(s, a)$ is the expected discounted return $\sum_k \gamma^k r_{t+k+1}$
# after taking $a$ in $s$ and following $\pi$. The optimal one satisfies the Bellman equation
#
# $$
# Q^*(s, a) = \mathbb{E}\bigl[\, r + \gamma\, (1 - d)\, \max_{a'} Q^*(s', a') \,\bigm|\, s, a \bigr],
# $$
#
# with $d = 1$ when $s'$ is terminal. Q-learning {cite}`watkins1992` turns it into an update: after
# each transition $(s, a, r, s', d)$, move $Q(s, a)$ towards the *target* $y = r + \gamma (1-d)
# \max_{a'} Q(s', a')$. With a table this converges. With a network $Q_\theta$ it becomes a
# regression, $\min_\theta \tfrac12 (Q_\theta(s,a) - y)^2$, and two things break:
#
# 1. **Correlated data.** Consecutive transitions are nearly identical states. SGD on one
#    transition at a time sees hundreds of "pole leaning left" samples in a row and overfits to the
#    current part of the state space, forgetting the rest. An *experience-replay buffer* {cite}`lin1992`
#    stores the last $N$ transitions and trains on mini-batches sampled uniformly from it: closer to
#    i.i.d. data, and each transition is reused many times.
# 2. **A moving target.** $y$ depends on $\theta$: every gradient step that raises $Q_\theta(s,a)$
#    also raises $Q_\theta(s', \cdot)$ for the similar state $s'$, so the target runs away from the
#    prediction and values can diverge. DQN {cite}`mnih2015` computes $y$ with a *target network*
#    $\theta^-$, a copy of $\theta$ refreshed only every $C$ gradient steps (or slowly,
#    $\theta^- \leftarrow \tau\theta + (1-\tau)\theta^-$):
#
# $$
# y = r + \gamma\,(1-d)\,\max_{a'} Q_{\theta^-}(s', a'), \qquad
# L(\theta) = \operatorname{Huber}\bigl(Q_\theta(s, a) - y\bigr).
# $$
#
# The Huber loss is quadratic for TD errors below 1 and linear above, so a few huge errors cannot
# produce huge gradients. The $\max$ over noisy estimates is biased upwards; *Double DQN*
# {cite}`vanhasselt2016` lets the online network choose $a'$ and the target network value it,
# $y = r + \gamma(1-d)\, Q_{\theta^-}(s', \arg\max_{a'} Q_\theta(s', a'))$.
#
# **Terminated is not truncated.** In $y$, $d$ is `terminated` only. A transition cut by the 500-step
# limit must still bootstrap: the pole was up, and the future would have paid more reward. Popular
# code writes `done = terminated or truncated` and stores `done`, which tells the network that the
# best state it ever reaches, 500 steps of perfect balance, is worth nothing. `companion.rl.dqn.td_target`
# on a hand-made batch (reward 1, $\max_{a'} Q(s', a') = 10$, $\gamma = 0.99$):

# %%
rewards = torch.tensor([1.0, 1.0, 1.0])
terminated = torch.tensor([0.0, 1.0, 0.0])  # an ordinary step, the pole fell, the 500-step limit
next_q = torch.tensor([[10.0, 3.0], [10.0, 3.0], [2.0, 10.0]])
targets = td_target(rewards, terminated, next_q, gamma=0.99)
for kind, y in zip(["ordinary step", "terminated (pole fell)", "truncated (time limit)"], targets):
    print(f"{kind:>24}: y = {y:.2f}")

# %% tags=["remove-input"]
assert torch.allclose(targets, torch.tensor([1.0 + 0.99 * 10, 1.0, 1.0 + 0.99 * 10]))

# %% [markdown]
# ## The popular snippet
#
# Here it is, as it circulates in blog posts and answers (ported to Keras 3): a 24-24 network,
# `model.predict` to act and to build the target, `model.fit` on the single transition just seen, no
# replay, no target network, `done = terminated or truncated`. We give it 200 environment steps
# (the originals run thousands of episodes) and time each step.

# %%
from companion.quiet import quiet_tensorflow  # noqa: E402

with quiet_tensorflow():  # TensorFlow's C++ start-up messages stay off the page
    import keras  # noqa: E402  (TensorFlow starts here; it takes a few seconds)

keras.utils.set_random_seed(0)
snippet_env = make_env("CartPole-v1")
model = keras.Sequential([
    keras.Input((4,)),
    keras.layers.Dense(24, activation="relu"),
    keras.layers.Dense(24, activation="relu"),
    keras.layers.Dense(2, activation="linear"),
])
model.compile(loss="mse", optimizer=keras.optimizers.Adam(learning_rate=1e-3))

SNIPPET_STEPS, gamma, epsilon = 200, 0.95, 1.0
snippet_returns, episode_return = [], 0.0
state, _ = snippet_env.reset(seed=0)
start = time.perf_counter()
for step in range(SNIPPET_STEPS):
    if rng.random() <= epsilon:
        action = int(rng.integers(2))
    else:
        action = int(np.argmax(model.predict(state[None], verbose=0)[0]))
    next_state, reward, terminated, truncated, _ = snippet_env.step(action)
    done = terminated or truncated  # the bug: truncation treated as termination
    target = reward if done else reward + gamma * np.amax(model.predict(next_state[None], verbose=0)[0])
    target_f = model.predict(state[None], verbose=0)
    target_f[0][action] = target
    model.fit(state[None], target_f, epochs=1, verbose=0)  # one transition, one gradient step
    epsilon = max(0.01, epsilon * 0.995)
    episode_return += reward
    state = next_state
    if done:
        snippet_returns.append(episode_return)
        episode_return = 0.0
        state, _ = snippet_env.reset()
snippet_ms = 1e3 * (time.perf_counter() - start) / SNIPPET_STEPS


def keras_greedy(model):
    return lambda obs: int(np.argmax(model(obs[None], training=False)[0]))


snippet_eval = evaluate(keras_greedy(model), snippet_env, episodes=20, seed=0)
print(f"{snippet_ms:.0f} ms per environment step; {len(snippet_returns)} episodes, mean return "
      f"{np.mean(snippet_returns):.1f}; greedy evaluation: {snippet_eval.mean():.1f}")
print(f"at this speed, 50,000 steps would take {50_000 * snippet_ms / 3.6e6:.1f} hours")

# %% tags=["remove-input"]
if os.environ.get("CI"):  # absolute times are asserted on the course's CI machine only; elsewhere, the ratio below
    assert snippet_ms > 40  # tens to hundreds of milliseconds per step
assert snippet_eval.mean() < 200  # nowhere near solved

# %% [markdown]
# **What to notice.** Four Keras calls per step (`predict` three times, `fit` once), each of which
# sets up a data pipeline, a loop and callbacks for a single row: the network itself is a few
# microseconds of arithmetic. After 200 steps the agent is where it started. The snippet's slowness
# hides its real flaws, because nobody runs it long enough to see that on-line, correlated updates
# with a self-moving target are unstable even when they are fast.
#
# ## DQN in PyTorch
#
# `companion.rl.dqn.train_dqn` is one page of code, top to bottom in the style of CleanRL's
# `dqn.py`: act $\varepsilon$-greedily, store the transition (with `terminated`, not `done`), every
# `train_every` steps take `gradient_steps` Huber-loss Adam steps with gradient-norm clipping on
# mini-batches from the replay buffer, copy the online network into the target network every
# `target_update_every` gradient steps, and evaluate the greedy policy every `eval_every` steps.
# The defaults of `DQNConfig` are the RL Baselines3 Zoo's for CartPole-v1 (learning rate 2.3e-3,
# batch 64, a 256-256 network, 128 gradient steps every 256 environment steps, $\varepsilon$ from 1
# to 0.04 over the first {fixed}`16%` of 50,000 steps, $\gamma = 0.99$). For reference, CleanRL's `dqn.py`
# trains for 500,000 steps by default.
#
# $\varepsilon$ decays linearly:

# %%
config = DQNConfig(seed=0)
eps = epsilon_schedule(config.epsilon_start, config.epsilon_end, int(config.exploration_fraction * config.total_steps))
print(config)
print("epsilon at steps 0, 4,000, 8,000, 20,000:", [round(eps(t), 3) for t in (0, 4_000, 8_000, 20_000)])

# %% tags=["remove-input"]
assert eps(0) == 1.0 and abs(eps(8_000) - 0.04) < 1e-12 and eps(20_000) == 0.04

# %% [markdown]
# Training stops early at the first periodic evaluation (20 greedy episodes, every 2,500 steps)
# whose mean return reaches 475, and keeps those weights; otherwise it runs the full 50,000 steps and
# keeps the best evaluated weights. Small MLPs run fastest on one CPU thread, which `train_dqn` uses
# (`threads=1`). This cell trains; it prints the environment steps and the seconds it took:

# %%
cpu_start = time.process_time()
run = train_dqn(config)
dqn_cpu_s = time.process_time() - cpu_start
dqn_ms = 1e3 * run.seconds / run.env_steps
print(f"solved at {run.solved_at:,} environment steps in {run.seconds:.0f} s wall-clock, {dqn_cpu_s:.0f} s CPU "
      f"({dqn_ms:.2f} ms per step, training included)")
glue("dqn_cpu_s", f"{dqn_cpu_s:.0f} s")
glue("dqn_solved_at", f"{run.solved_at:,}")

# %%
ax = plot_histories({"episode return (running mean of 10)": run.history}, key="episode_return", smooth=10)
steps, episode_returns = run.history.series("episode_return")
ax.plot(steps, episode_returns, color="tab:blue", alpha=0.25, lw=0.8, label="episode return (ε-greedy)")
eval_steps, eval_returns = run.history.series("eval_return")
ax.plot(eval_steps, eval_returns, "o-", color="tab:orange", label="greedy evaluation (mean of 20)")
ax.axhline(475, color="tab:green", ls="--", label="solved (475)")
ax.set_xlabel("environment steps")
ax.set_ylabel("return (steps the pole stays up)")
ax.set_title(f"DQN balances the pole for 500 steps after {run.solved_at:,} environment steps")
ax.legend(loc="upper left")
plt.show()

# %% [markdown]
# Greedy evaluation of the kept weights on 20 *new* episodes (initial states the training never
# evaluated on):

# %%
greedy_returns = evaluate(run.policy(), make_env("CartPole-v1"), episodes=20, seed=0)
print("greedy returns:", greedy_returns.astype(int))
print(f"mean {greedy_returns.mean():.1f}; the snippet's step is {snippet_ms / dqn_ms:.0f}x slower than DQN's")

# %% tags=["remove-input"]
assert run.solved_at is not None and run.solved_at <= 50_000
if os.environ.get("CI"):  # absolute times are asserted on the course's CI machine only
    assert dqn_cpu_s < 90  # the CI machine trains it in well under a minute and a half
assert greedy_returns.mean() >= 475
assert snippet_ms > 20 * dqn_ms  # the snippet's environment step is far slower, training included
assert eval_returns[:-1].max() < 300 and eval_returns[-1] == 500  # a long plateau, then a jump

# %% [markdown]
# **What to notice.** The $\varepsilon$-greedy episode returns (blue) stay noisy long after the
# greedy policy is good: exploration keeps pushing the cart randomly {fixed}`4%` of the time. The greedy
# evaluations (orange) sit on a plateau far below 475 for most of the run, then jump to 500 within
# one evaluation period, here after {glue:text}`dqn_solved_at` environment steps and
# {glue:text}`dqn_cpu_s` of CPU time. DQN's learning curves are famously non-monotone (run longer and they often
# fall back); that is why we evaluate periodically and keep the best weights instead of the last ones. The same seed gives the same curve on every run: the environment, NumPy and torch
# are seeded and one CPU thread is used (the next chapter repeats a run and checks it). `python -m companion.bench dqn` trains three seeds and
# prints the steps to solve and the seconds for each.
#
# ## Watching the agent
#
# The environment draws frames off-screen (`render_mode="rgb_array"`); every tenth frame of one
# episode becomes an animated GIF.

# %%
render_env = make_env("CartPole-v1", render=True)
frames, episode_length = record_frames(run.policy(), render_env, max_steps=500, every=10, seed=1)
render_env.close()
gif_path = os.path.join(tempfile.mkdtemp(), "cartpole_dqn.gif")
images = [PILImage.fromarray(f).resize((300, 200)).quantize(colors=16) for f in frames]
images[0].save(gif_path, save_all=True, append_images=images[1:], duration=80, loop=0)
print(f"{episode_length} steps, {len(frames)} frames, {os.path.getsize(gif_path) / 1e3:.0f} kB")
display(Image(filename=gif_path))

# %% tags=["remove-input"]
assert episode_length == 500 and os.path.getsize(gif_path) < 1_000_000

# %% [markdown]
# ## The same agent in Keras
#
# `companion.rl.keras_dqn.train_keras_dqn` is the working version of the snippet: the same loop and
# hyperparameters as the PyTorch agent, with the network called as `model(x, training=False)` inside
# a `tf.function` to act, and one compiled `train_step` (a `GradientTape`, Huber loss, Adam with
# `global_clipnorm`) per mini-batch. We run it briefly here to measure its step time; the benchmark
# trains it to the end (it is allowed 100,000 steps).

# %%
from companion.rl.keras_dqn import train_keras_dqn  # noqa: E402

keras_run = train_keras_dqn(DQNConfig(seed=0, total_steps=5_000, eval_every=5_000, eval_episodes=5))
keras_ms = 1e3 * keras_run.seconds / keras_run.env_steps
print(f"Keras DQN: {keras_ms:.2f} ms per environment step (training included); the snippet: {snippet_ms:.0f} ms")

# %% tags=["remove-input"]
assert snippet_ms > 10 * keras_ms

# %% [markdown]
# ## What to try
#
# The ablations that show why the pieces are there are cheap to state and expensive to measure
# well, since one seed proves nothing in RL. The [next chapter](03_dqn_ablations.ipynb) trains three
# seeds of each variant and draws their learning curves: without the target network
# (`DQNConfig(target_network=False)`), without replay (`buffer_size=64`, one batch), with a small
# buffer (`buffer_size=2_000`) and with a ten times smaller learning rate. The same table of
# variants, with Double DQN (`double_dqn=True`) added, runs at this chapter's full-length defaults in
# `python -m companion.bench dqn --ablations`.
#
# ## Pitfalls in popular snippets
#
# * `model.predict` for a single observation inside the environment loop: orders of magnitude slower
#   than calling the model. Use `model(x, training=False)`, compiled with `tf.function`.
# * Training on each transition as it arrives, with no replay buffer: correlated data, forgetting.
# * Bootstrapping from the network being trained: a target that moves with every step.
# * `done = terminated or truncated` stored in the buffer: the time limit becomes a fake terminal
#   state, and the best states are taught to be worth nothing.
# * Reporting the last $\varepsilon$-greedy episode or the best single episode as "solved": solved
#   means a *greedy* mean of 475 over many episodes.
#
# ## Summary
#
# * DQN is regression on a target computed from the network itself; replay buffers and target
#   networks make that regression well-posed enough for SGD.
# * A time-limit truncation bootstraps; a termination does not.
# * With the RL Baselines3 Zoo's hyperparameters and one CPU thread, DQN solves CartPole-v1 in a few
#   tens of thousands of environment steps ({glue:text}`dqn_solved_at` here) and {glue:text}`dqn_cpu_s` of CPU time; the snippet's
#   environment steps cost tens of times more each and learn nothing in the time.
#
# ## Exercises
#
# ### Exercise 1 — Implement it: the Double DQN target in NumPy
#
# Write `double_dqn_target(rewards, terminated, next_q_target, next_q_online, gamma)` with NumPy
# arrays: `rewards` and `terminated` of shape `(batch,)`, the two Q arrays of shape
# `(batch, n_actions)`. Return $y = r + \gamma (1-d)\, Q_{\theta^-}(s', \arg\max_{a'} Q_\theta(s', a'))$.
# Raise a `ValueError` naming `gamma` unless $0 \le \gamma \le 1$.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "dqn-ex1-solution", "locked": false, "schema_version": 3, "solution": true}
def double_dqn_target(rewards, terminated, next_q_target, next_q_online, gamma):
    """Double DQN target (van Hasselt et al., 2016): the online network chooses, the target network values."""
    ### BEGIN SOLUTION
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"Invalid gamma: {gamma} (must be in [0, 1])")
    best = np.argmax(next_q_online, axis=1)
    next_value = np.take_along_axis(np.asarray(next_q_target), best[:, None], axis=1)[:, 0]
    return np.asarray(rewards) + gamma * (1.0 - np.asarray(terminated)) * next_value
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "dqn-ex1-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
from companion.exercises import expect_error
y = double_dqn_target(np.array([1.0, 1.0]), np.array([0.0, 1.0]),
                      np.array([[4.0, 8.0], [4.0, 8.0]]), np.array([[5.0, 1.0], [5.0, 1.0]]), 0.5)
assert np.allclose(y, [1.0 + 0.5 * 4.0, 1.0]), y
### BEGIN HIDDEN TESTS
gen = np.random.default_rng(0)
r, d = gen.normal(size=32), (gen.random(32) < 0.2).astype(float)
qt, qo = gen.normal(size=(32, 3)), gen.normal(size=(32, 3))
expected = td_target(torch.tensor(r), torch.tensor(d), torch.tensor(qt), 0.9, next_q_online=torch.tensor(qo))
assert np.allclose(double_dqn_target(r, d, qt, qo, 0.9), expected.numpy()), "your targets differ from companion.rl.dqn.td_target with next_q_online (Double DQN)"
expect_error(lambda: double_dqn_target(r, d, qt, qo, 1.5), ValueError, "gamma",
             when="double_dqn_target(rewards, terminated, next_q_target, next_q_online, gamma=1.5)")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 — Implement it: the $\varepsilon$-greedy policy and its schedule
#
# Write `epsilon_greedy(q_values, step, rng, start, end, duration)` that returns the pair
# `(action, epsilon)` that DQN uses at environment step `step` (counting from 0):
#
# * $\varepsilon(t) = \text{start} + (\text{end} - \text{start})\, \min(t, D) / D$ with $D$ =
#   `duration`: linear from `start` to `end` over $D$ steps, then constant (as
#   `companion.rl.epsilon_schedule`);
# * the action: draw `u = rng.random()` from the NumPy `Generator` `rng` (always, once per call); if
#   $u < \varepsilon$, return a uniform action `int(rng.integers(n_actions))`, otherwise the greedy one
#   `int(np.argmax(q_values))` for the 1-D array `q_values` of length `n_actions`. With the same
#   generator this follows the rule of `companion.rl.dqn.train_dqn`'s loop (one `rng.random()` per step,
#   then `rng.integers` only when exploring);
# * raise a `ValueError` naming `duration` unless it is an integer $\ge 1$, and one naming `start`
#   (or `end`) unless it lies in $[0, 1]$.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "dqn-ex2-solution", "locked": false, "schema_version": 3, "solution": true}
def epsilon_greedy(q_values, step, rng, start, end, duration):
    """(action, epsilon) of an epsilon-greedy policy whose epsilon decays linearly from start to end."""
    ### BEGIN SOLUTION
    if isinstance(duration, bool) or not isinstance(duration, (int, np.integer)) or duration < 1:
        raise ValueError(f"duration must be an integer >= 1, got {duration!r}")
    for name, value in (("start", start), ("end", end)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    eps = start + (end - start) * min(step, duration) / duration
    q_values = np.asarray(q_values)
    if rng.random() < eps:
        return int(rng.integers(len(q_values))), eps
    return int(np.argmax(q_values)), eps
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "dqn-ex2-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
from companion.exercises import expect_error
def ex2_reference_actions(q_rows, seed, start, end, duration):
    """The actions chosen by the rule of train_dqn's loop for these Q-values, one row per step."""
    ex2_rng, ex2_eps = np.random.default_rng(seed), epsilon_schedule(start, end, duration)
    return [int(ex2_rng.integers(len(q))) if ex2_rng.random() < ex2_eps(t) else int(np.argmax(q))
            for t, q in enumerate(q_rows)]


ex2_gen = np.random.default_rng(0)
for ex2_step in (0, 4_000, 8_000, 20_000):
    ex2_mine = epsilon_greedy(np.array([0.0, 1.0]), ex2_step, ex2_gen, 1.0, 0.04, 8_000)[1]
    ex2_ref = epsilon_schedule(1.0, 0.04, 8_000)(ex2_step)
    assert abs(ex2_mine - ex2_ref) < 1e-12, f"epsilon at step {ex2_step}: expected {ex2_ref:.4f} (companion.rl.epsilon_schedule), got {ex2_mine}"
ex2_q = np.random.default_rng(1).normal(size=(300, 2))
ex2_gen = np.random.default_rng(7)
ex2_actions = [epsilon_greedy(q, t, ex2_gen, 1.0, 0.04, 200)[0] for t, q in enumerate(ex2_q)]
ex2_expected = ex2_reference_actions(ex2_q, 7, 1.0, 0.04, 200)
ex2_differ = int(np.sum(np.array(ex2_actions) != np.array(ex2_expected)))
assert ex2_differ == 0, (f"{ex2_differ} of 300 actions differ from train_dqn's rule (draw u = rng.random() every call; "
                         "if u < epsilon, rng.integers(n_actions), else argmax)")
### BEGIN HIDDEN TESTS
ex2_q = np.random.default_rng(2).normal(size=(500, 4))
for ex2_args in [(0.5, 0.5, 1), (0.0, 0.0, 10), (1.0, 0.05, 1), (0.2, 0.9, 100)]:  # increasing epsilon too
    ex2_gen = np.random.default_rng(3)
    ex2_actions = [epsilon_greedy(q, t, ex2_gen, *ex2_args) for t, q in enumerate(ex2_q)]
    assert [a for a, _ in ex2_actions] == ex2_reference_actions(ex2_q, 3, *ex2_args), (
        f"start, end, duration = {ex2_args}: the actions differ from train_dqn's rule")
    ex2_ref = epsilon_schedule(*ex2_args)
    assert all(abs(e - ex2_ref(t)) < 1e-12 for t, (_, e) in enumerate(ex2_actions)), (
        f"start, end, duration = {ex2_args}: epsilon differs from companion.rl.epsilon_schedule")
    assert all(isinstance(a, int) and 0 <= a < 4 for a, _ in ex2_actions), "actions must be Python ints in range(n_actions)"
ex2_gen = np.random.default_rng(4)
ex2_random_share = np.mean([epsilon_greedy(np.array([0.0, 9.0, 0.0]), 10**6, ex2_gen, 1.0, 0.3, 10)[0] != 1 for _ in range(20_000)])
assert abs(ex2_random_share - 0.3 * 2 / 3) < 0.015, (
    f"with epsilon = 0.3 and 3 actions, a non-greedy action should come {0.2:.0%} of the time, got {ex2_random_share:.1%}")
for ex2_kwargs, ex2_arg in [({"start": 1.0, "end": 0.05, "duration": 0}, "duration"),
                            ({"start": 1.0, "end": 0.05, "duration": 2.5}, "duration"),
                            ({"start": 1.5, "end": 0.05, "duration": 10}, "start"),
                            ({"start": 1.0, "end": -0.1, "duration": 10}, "end")]:
    expect_error(lambda: epsilon_greedy(np.zeros(2), 0, np.random.default_rng(0), **ex2_kwargs), ValueError, ex2_arg,
                 when="epsilon_greedy(q_values, 0, rng, " + ", ".join(f"{k}={v}" for k, v in ex2_kwargs.items()) + ")")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3 — Derive it: what the Q-values of a perfect agent should be
#
# CartPole pays $r = 1$ per step. (a) What is the discounted return $\sum_{k=0}^{T-1} \gamma^k$ of an
# episode that lasts $T$ more steps, and its limit for an episode that never ends? Write
# `discounted_return(steps, gamma)` for $T$ = `steps` (an integer $\ge 0$ or `math.inf`), valid for
# $0 \le \gamma \le 1$ (for $\gamma = 1$: $T$, infinite when $T$ is). (b) A perfect agent balances
# the pole for the full 500 steps. With the chapter's $\gamma = 0.99$, what should its greedy
# Q-value $\max_a Q(s, a)$ be in the first state and in a state 10 steps before the time limit,
# when truncation bootstraps (as in `td_target`), and when it is stored as `done` (as in the
# snippet)? The observation does not contain the time. (c) What horizon does the snippet's
# $\gamma = 0.95$ correspond to?

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "dqn-ex3-solution", "locked": false, "schema_version": 3, "solution": true}
import math  # noqa: E402


def discounted_return(steps, gamma):
    ### BEGIN SOLUTION
    if gamma == 1.0:
        return float(steps)
    if math.isinf(steps):
        return 1.0 / (1.0 - gamma)
    return (1.0 - gamma**steps) / (1.0 - gamma)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "dqn-ex3-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
assert abs(discounted_return(math.inf, 0.99) - 100.0) < 1e-9, f"an endless episode at gamma = 0.99: 1 / (1 - gamma) = 100, got {discounted_return(math.inf, 0.99)}"
### BEGIN HIDDEN TESTS
for ex3_steps, ex3_gamma in [(500, 0.99), (10, 0.99), (1, 0.9), (0, 0.9), (200, 0.95), (37, 0.0), (12, 1.0)]:
    ex3_sum = float(np.sum(ex3_gamma ** np.arange(ex3_steps, dtype=float)))
    assert abs(discounted_return(ex3_steps, ex3_gamma) - ex3_sum) < 1e-9, (
        f"T = {ex3_steps}, gamma = {ex3_gamma}: the sum of gamma^k for k < T is {ex3_sum:.6f}, got {discounted_return(ex3_steps, ex3_gamma)}")
assert abs(discounted_return(math.inf, 0.95) - 20.0) < 1e-9, f"gamma = 0.95, endless: 20, got {discounted_return(math.inf, 0.95)}"
assert discounted_return(math.inf, 1.0) == math.inf, f"gamma = 1, endless: infinite, got {discounted_return(math.inf, 1.0)}"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "dqn-ex3-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# (a) A geometric sum: $\sum_{k=0}^{T-1} \gamma^k = \dfrac{1 - \gamma^T}{1 - \gamma}$ for $\gamma < 1$,
# which tends to $\dfrac{1}{1-\gamma}$ as $T \to \infty$ ($T$ itself when $\gamma = 1$).
#
# (b) With truncation bootstrapping, the target never sees an end: every state on the perfect
# agent's path satisfies $Q = 1 + \gamma Q$, so $Q = 1/(1-0.99) = 100$ in the first state and 10
# steps before the limit alike. If the time limit is stored as `done`, the true values would be
# $(1 - 0.99^{500})/0.01 \approx 99.34$ at the start but only $(1 - 0.99^{10})/0.01 \approx 9.56$
# ten steps before the end, and 1 in the last state. Since the observation does not contain the
# time, these states look like any other balanced state: the network receives targets near 99 and
# near 1 for the same input, and the best states are pulled down. (During training, before the agent
# is perfect, the values are lower: the episodes end when the pole falls.)
#
# (c) $1/(1 - 0.95) = 20$ steps: rewards further away than a few tens of steps barely count, which
# suits a short task but tells the agent little about keeping the pole up for 500 steps.
# :::
# <!-- ### END SOLUTION -->

# %% [markdown]
# ### Exercise 4 — Investigate: how slow is `predict`?
#
# Time three ways of getting the Q-values of *one* observation from the snippet's Keras `model`:
# `model.predict(x, verbose=0)`, `model(x, training=False)`, and the same call wrapped in
# `tf.function`. Report the median microseconds of each over a few dozen calls, and the ratio between
# the slowest and the fastest. Which one belongs inside an environment loop, and when is `predict`
# the right tool?

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "dqn-ex4-solution", "locked": false, "schema_version": 3, "solution": true}
### BEGIN SOLUTION
import tensorflow as tf  # noqa: E402

x = np.zeros((1, 4), dtype=np.float32)
compiled = tf.function(lambda x: model(x, training=False))
ways = {"model.predict": lambda: model.predict(x, verbose=0),
        "model(x, training=False)": lambda: model(x, training=False),
        "tf.function": lambda: compiled(x)}


def median_microseconds(call, repeats=30):
    call()  # warm-up (tracing, first allocation)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return 1e6 * np.median(times)


median_us = {name: median_microseconds(call) for name, call in ways.items()}
for name, us in median_us.items():
    print(f"{name:>26}: {us:8.0f} µs")
print(f"predict / tf.function: {median_us['model.predict'] / median_us['tf.function']:.0f}x")
### END SOLUTION

# %% tags=["remove-input"]
assert median_us["model.predict"] > 10 * median_us["tf.function"]

# %% [markdown] nbgrader={"grade": true, "grade_id": "dqn-ex4-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# `model.predict` is one to two orders of magnitude slower than calling the model for a single
# observation (more than ten times, and typically far more, on a CPU): each call builds a data
# adapter, an iterator and a prediction loop with callbacks, then concatenates batches, all to
# multiply a 4-vector by three small matrices. A direct `model(x, training=False)` call skips the
# pipeline but still runs op by op in eager mode; `tf.function` runs the whole forward pass as one
# compiled graph and is the fastest. Inside an environment loop, where one observation arrives at a
# time, call the model (compiled). `predict` is for large arrays of inputs processed in batches,
# for example scoring a whole data set after training, where its per-call overhead is amortized.
# :::
# <!-- ### END SOLUTION -->
