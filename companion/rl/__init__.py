"""Deep Q-learning on gymnasium's CartPole (Part IV of the course).

``ReplayBuffer`` (replay.py), ``epsilon_schedule`` and ``evaluate`` (evaluation.py) need NumPy only; the
PyTorch agent lives in ``companion.rl.dqn`` and the Keras one in ``companion.rl.keras_dqn``, imported
on demand so that ``import companion.rl`` stays light.

>>> from companion.rl.dqn import DQNConfig, train_dqn
>>> run = train_dqn(DQNConfig(seed=0))          # solves CartPole-v1 in a few tens of thousands of steps
>>> evaluate(run.policy(), make_env(), episodes=20).mean()
"""

from .config import DQNConfig, DQNRun
from .evaluation import epsilon_schedule, evaluate, make_env, record_frames
from .replay import Batch, ReplayBuffer

__all__ = ["Batch", "DQNConfig", "DQNRun", "ReplayBuffer", "epsilon_schedule", "evaluate", "make_env", "record_frames"]
