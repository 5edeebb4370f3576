"""Bad input, module by module: each public function, fed what a hurried user passes, raises a ValueError or
TypeError whose message names the argument (as torch.optim does), before any work is done.

One row per case: (id, call, expected exception, the argument the message must name). The kinds
tried: empty, wrong type, wrong shape, out of range, NaN/inf, a string for a number and a number
for a string, mismatched pairs.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from companion import augment, clipping, gradient_descent, initialization, monitoring, optim, preprocessing  # noqa: E402
from companion import regularization, schedules, sentiment, timing, training  # noqa: E402
from companion.compression import distillation, double_quant, lora, nf4, pruning, quantization  # noqa: E402
from companion.distributed import DDPConfig  # noqa: E402
from companion.rl import dqn, evaluation  # noqa: E402
from companion.rl.config import DQNConfig  # noqa: E402
from companion import search, tuning  # noqa: E402
from companion.data import load_imdb, load_mnist  # noqa: E402
from companion.data.download import file_hash  # noqa: E402
from companion.search import annealing, genetic  # noqa: E402
from companion.history import History  # noqa: E402
from companion.plotting import plot_histories  # noqa: E402

BOX = [(-1.0, 1.0), (-1.0, 1.0)]
HISTORY = History("sgd")
HISTORY.log(0, loss=2.3)
HISTORY.log(1, loss=1.9)


def keras_transfer():
    """companion.transfer_learning, imported (with Keras) only by the rows that need it."""
    pytest.importorskip("keras")
    from companion import transfer_learning

    return transfer_learning


def tiny_keras_model():
    import keras

    return keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten(), keras.layers.Dense(2, name="dense")])
RNG = np.random.default_rng(0)

NAN, INF = float("nan"), float("inf")
X3, Y3 = torch.zeros(3, 4), torch.zeros(3, dtype=torch.long)
IMAGES = np.zeros((2, 8, 8))

CASES = [
    # clipping
    ("clip_by_global_norm-negative", lambda: clipping.clip_by_global_norm(-1.0), ValueError, "max_norm"),
    ("clip_by_global_norm-nan", lambda: clipping.clip_by_global_norm(NAN), ValueError, "max_norm"),
    ("clip_by_global_norm-string", lambda: clipping.clip_by_global_norm("1.0"), TypeError, "max_norm"),
    ("clip_by_value-negative", lambda: clipping.clip_by_value(-0.5), ValueError, "limit"),
    ("clip_by_norm_per_leaf-inf", lambda: clipping.clip_by_norm_per_leaf(INF), ValueError, "max_norm"),
    # regularization
    ("l2_penalty-negative", lambda: regularization.l2_penalty(torch.nn.Linear(2, 2), -0.1), ValueError, "strength"),
    ("l1_penalty-nan", lambda: regularization.l1_penalty(torch.nn.Linear(2, 2), NAN), ValueError, "strength"),
    ("inverted_dropout-p-one", lambda: regularization.inverted_dropout(torch.ones(3), 1.0), ValueError, "p"),
    ("inverted_dropout-p-string", lambda: regularization.inverted_dropout(torch.ones(3), "0.5"), TypeError, "p"),
    # initialization
    ("fan_in_and_fan_out-1d", lambda: initialization.fan_in_and_fan_out((5,)), ValueError, "shape"),
    ("fan_in_and_fan_out-layout", lambda: initialization.fan_in_and_fan_out((5, 3), layout="jax"), ValueError, "layout"),
    ("calculate_gain-unknown", lambda: initialization.calculate_gain("swish"), ValueError, "nonlinearity"),
    ("glorot_uniform-gain-negative", lambda: initialization.glorot_uniform((4, 3), gain=-1.0), ValueError, "gain"),
    # gradient descent
    ("softmax_regression_init-zero", lambda: gradient_descent.softmax_regression_init(0, 3), ValueError, "n_features"),
    ("minibatch_gradient_variance-batch", lambda: gradient_descent.minibatch_gradient_variance(
        gradient_descent.softmax_regression_init(2, 2), np.zeros((4, 2)), np.zeros(4, int), 0), ValueError, "batch_size"),
    # preprocessing
    ("imputation_statistics-strategy", lambda: preprocessing.imputation_statistics(np.zeros((3, 2)), "mode"),
     ValueError, "strategy"),
    ("imputation_statistics-1d", lambda: preprocessing.imputation_statistics(np.zeros(3)), ValueError, "x"),
    # monitoring
    ("numerical_gradient-eps", lambda: monitoring.numerical_gradient(lambda x: float(x.sum()), np.zeros(2), eps=0.0),
     ValueError, "eps"),
    ("gradient_check-not-callable", lambda: monitoring.gradient_check(None, lambda x: x, np.zeros(2)), TypeError, "f"),
    ("gradient_check-grad-not-callable", lambda: monitoring.gradient_check(lambda x: 0.0, np.zeros(2), np.zeros(2)),
     TypeError, "grad_f"),
    # schedules
    ("cosine_decay-string", lambda: schedules.cosine_decay("0.1", 10), TypeError, "init_value"),
    ("linear_warmup-zero", lambda: schedules.linear_warmup(0.1, 0), ValueError, "warmup_steps"),
    ("one_cycle-total", lambda: schedules.one_cycle(0.1, -5), ValueError, "total_steps"),
    # optim
    ("adam-lr-nan", lambda: optim.adam(NAN), ValueError, "learning_rate"),
    ("sgd-momentum-string", lambda: optim.sgd(0.1, momentum="0.9"), TypeError, "momentum"),
    ("lamb-b1-one", lambda: optim.lamb(0.1, b1=1.0), ValueError, "beta_1"),
    ("get_optimizer-number", lambda: optim.get_optimizer(3), ValueError, "optimizer name"),
    ("radam-lr-negative", lambda: optim.radam(-1e-3), ValueError, "learning_rate"),
    ("lion-b2-string", lambda: optim.lion(1e-4, b2="0.99"), TypeError, "beta_2"),
    ("adafactor-convention", lambda: optim.adafactor(convention="jax"), ValueError, "convention"),
    ("muon-ns-steps-negative", lambda: optim.muon(ns_steps=-1), ValueError, "ns_steps"),
    ("newton_schulz-1d", lambda: optim.newton_schulz(np.ones(3)), ValueError, "matrix"),
    ("schedule_free-torch", lambda: optim.schedule_free_adamw(convention="torch"), ValueError, "convention"),
    ("schedule_free-warmup-float", lambda: optim.schedule_free_adamw(warmup_steps=2.5), TypeError, "warmup_steps"),
    ("sam_perturbation-rho-nan", lambda: optim.sam_perturbation([np.ones(2)], rho=NAN), ValueError, "rho"),
    ("state_size-string", lambda: optim.state_size("adam", [np.ones(2)]), TypeError, "transformation"),
    ("double_quantize_absmax-code", lambda: double_quant.double_quantize_absmax(torch.ones(4), code="fp8"), ValueError, "code"),
    ("quantize_nf4_double-scale-block", lambda: double_quant.quantize_nf4_double(torch.ones(64), scale_block_size=0),
     ValueError, "scale_block_size"),
    # training
    ("mlp-sizes", lambda: training.mlp((784,)), ValueError, "sizes"),
    ("mlp-activation", lambda: training.mlp((4, 2), activation="gelu"), ValueError, "activation"),
    ("batches-batch-size", lambda: list(training.batches(10, 0)), ValueError, "batch_size"),
    ("evaluate-mismatched", lambda: training.evaluate(training.mlp((4, 2)), X3, Y3[:2]), ValueError, "y"),
    ("evaluate-metric", lambda: training.evaluate(training.mlp((4, 2)), X3, Y3, ("f1",)), ValueError, "metrics"),
    ("train_classifier-epochs", lambda: training.train_classifier(training.mlp((4, 2)), optim.sgd(0.1), X3, Y3,
                                                                   epochs=0, progress=False), ValueError, "epochs"),
    ("train_classifier-numpy", lambda: training.train_classifier(training.mlp((4, 2)), optim.sgd(0.1), X3.numpy(), Y3,
                                                                  progress=False), TypeError, "x_train"),
    ("train_classifier-optimizer", lambda: training.train_classifier(training.mlp((4, 2)), "adam", X3, Y3,
                                                                      progress=False), TypeError, "optimizer"),
    ("mnist_tensors-shape", lambda: training.mnist_tensors(10, shape="square"), ValueError, "shape"),
    ("mnist_tensors-too-many", lambda: training.mnist_tensors(60_000, val=1), ValueError, "train + val"),
    # timing, distributed
    ("time_it-warmup", lambda: timing.time_it(lambda: None, warmup=-1), ValueError, "warmup"),
    ("DDPConfig-steps", lambda: DDPConfig(steps=0), ValueError, "steps"),
    ("DDPConfig-momentum", lambda: DDPConfig(momentum=1.0), ValueError, "momentum"),
    ("DDPConfig-steps-string", lambda: DDPConfig(steps="10"), TypeError, "steps"),
    # augmentation
    ("rotate-3-angles-for-2", lambda: augment.rotate(IMAGES, [1.0, 2.0, 3.0]), ValueError, "angles"),
    ("random_rotation-degrees", lambda: augment.random_rotation(IMAGES, -5.0, 0), ValueError, "max_degrees"),
    ("add_gaussian_noise-std", lambda: augment.add_gaussian_noise(IMAGES, NAN, 0), ValueError, "std"),
    ("AugmentedImages-1d", lambda: augment.AugmentedImages(np.zeros(5), np.zeros(5)), ValueError, "images"),
    ("AugmentedImages-shift", lambda: augment.AugmentedImages(IMAGES, [0, 1], max_shift=-1.0), ValueError, "max_shift"),
    # sentiment
    ("pad_batch-empty", lambda: sentiment.pad_batch([]), ValueError, "seqs"),
    ("length_batches-batch", lambda: sentiment.length_batches([3, 4], 0), ValueError, "batch_size"),
    ("check_labels-three", lambda: sentiment.check_labels([0, 1, 2]), ValueError, "labels"),
    # compression
    ("magnitude_mask-sparsity", lambda: pruning.magnitude_mask(torch.ones(3, 3), 1.5), ValueError, "sparsity"),
    ("magnitude_mask-nan", lambda: pruning.magnitude_mask(torch.ones(3, 3), NAN), ValueError, "sparsity"),
    ("structured_mask-amount", lambda: pruning.structured_mask(torch.ones(3, 3), -0.1), ValueError, "amount"),
    ("should_prune-frequency", lambda: pruning.should_prune(5, 0, 10, 0), ValueError, "frequency"),
    ("quant_range-bits", lambda: quantization.quant_range(0), ValueError, "num_bits"),
    ("affine_qparams-min-above-max", lambda: quantization.affine_qparams(1.0, -1.0), ValueError, "x_min"),
    ("soft_targets-temperature", lambda: distillation.soft_targets(torch.zeros(2, 3), 0.0), ValueError, "temperature"),
    ("distillation_loss-alpha", lambda: distillation.distillation_loss(
        torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), temperature=2.0, alpha=1.5),
     ValueError, "alpha"),
    ("lora_parameter_count-rank", lambda: lora.lora_parameter_count(8, 8, 0), ValueError, "rank"),
    ("apply_lora-rank-string", lambda: lora.apply_lora(torch.nn.Sequential(torch.nn.Linear(4, 4)), "2"),
     TypeError, "rank"),
    ("quantize_nf4-block", lambda: nf4.quantize_nf4(torch.ones(64), block_size=0), ValueError, "block_size"),
    # reinforcement learning
    ("epsilon_schedule-start", lambda: evaluation.epsilon_schedule(1.5), ValueError, "start"),
    ("epsilon_schedule-duration", lambda: evaluation.epsilon_schedule(duration=0), ValueError, "duration"),
    ("make_env-unknown", lambda: evaluation.make_env("CartPole-v9"), ValueError, "env_id"),
    ("soft_update-tau", lambda: dqn.soft_update(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2), 1.5), ValueError, "tau"),
    ("td_target-gamma", lambda: dqn.td_target(torch.zeros(2), torch.zeros(2), torch.zeros(2, 2), 1.5),
     ValueError, "gamma"),
    ("q_network-hidden-int", lambda: dqn.q_network(4, 2, hidden=256), TypeError, "hidden"),
    ("DQNConfig-seed-negative", lambda: DQNConfig(seed=-1), ValueError, "seed"),
    ("DQNConfig-double-string", lambda: DQNConfig(double_dqn="yes"), TypeError, "double_dqn"),
    ("DQNConfig-solved-nan", lambda: DQNConfig(solved_return=NAN), TypeError, "solved_return"),
    ("DQNConfig-device-unknown", lambda: DQNConfig(device="tpu"), ValueError, "device"),
    ("DQNConfig-threads-zero", lambda: DQNConfig(threads=0), ValueError, "threads"),
    # search
    ("minimize-unknown-method", lambda: search.minimize(search.sphere, BOX, method="nelder"), ValueError, "method"),
    ("minimize-budget-zero", lambda: search.minimize(search.sphere, BOX, budget=0), ValueError, "budget"),
    ("minimize-bounds-reversed", lambda: search.minimize(search.sphere, [(1.0, -1.0)]), ValueError, "bounds"),
    ("minimize-bounds-nan", lambda: search.minimize(search.sphere, [(NAN, 1.0)]), ValueError, "bounds"),
    ("minimize-objective-string", lambda: search.minimize("sphere", BOX), TypeError, "objective"),
    ("simulated_annealing-temperature", lambda: annealing.simulated_annealing(search.sphere, BOX, 10,
                                                                              initial_temperature=-1.0),
     ValueError, "initial_temperature"),
    ("differential_evolution-crossover", lambda: search.differential_evolution(search.sphere, BOX, 100, crossover=1.5),
     ValueError, "crossover"),
    ("tournament_selection-size", lambda: genetic.tournament_selection(np.zeros(5), 3, 0, RNG), ValueError,
     "tournament_size"),
    ("gaussian_mutation-rate", lambda: genetic.gaussian_mutation(np.zeros(3), 1.5, 0.1, RNG), ValueError, "rate"),
    # tuning
    ("make_sampler-unknown", lambda: tuning.make_sampler("hyperband"), ValueError, "sampler"),
    ("grid_space-points", lambda: tuning.grid_space(0), ValueError, "points_per_float"),
    ("params_from_unit-outside", lambda: tuning.params_from_unit([1.5, 0.5, 0.5]), ValueError, "u"),
    ("rbf_kernel-length", lambda: tuning.rbf_kernel(np.zeros((2, 1)), np.zeros((2, 1)), length_scale=0.0),
     ValueError, "length_scale"),
    ("expected_improvement-std", lambda: tuning.expected_improvement(np.zeros(2), -np.ones(2), 0.0), ValueError,
     "std"),
    # data
    ("load_mnist-split", lambda: load_mnist("validation"), ValueError, "split"),
    ("load_mnist-limit", lambda: load_mnist("train", limit=-5), ValueError, "limit"),
    ("load_imdb-split", lambda: load_imdb("dev"), ValueError, "split"),
    ("file_hash-algorithm", lambda: file_hash(__file__, "crc32"), ValueError, "algorithm"),
    # plotting
    ("plot_histories-empty", lambda: plot_histories([]), ValueError, "histories"),
    ("plot_histories-string", lambda: plot_histories("loss"), TypeError, "histories"),
    ("plot_histories-not-a-history", lambda: plot_histories({"adam": [0.3, 0.2]}), TypeError, "histories"),
    ("plot_histories-key", lambda: plot_histories([HISTORY], key="accuracy"), ValueError, "key"),
    ("plot_histories-x", lambda: plot_histories([HISTORY], x="epoch"), ValueError, "x"),
    ("plot_histories-no-seconds", lambda: plot_histories([HISTORY], x="seconds"), ValueError, "x"),
    ("plot_histories-smooth-zero", lambda: plot_histories([HISTORY], smooth=0), ValueError, "smooth"),
    ("plot_histories-smooth-string", lambda: plot_histories([HISTORY], smooth="5"), TypeError, "smooth"),
    # transfer learning (Keras models, built on first use)
    ("build_head-features", lambda: keras_transfer().build_head(0, 2), ValueError, "num_features"),
    ("build_head-dropout", lambda: keras_transfer().build_head(8, 2, dropout=1.0), ValueError, "dropout"),
    ("build_head-hidden", lambda: keras_transfer().build_head(8, 2, hidden_units=2.5), ValueError, "hidden_units"),
    ("build_base-regime", lambda: keras_transfer().build_base("linear_probe"), ValueError, "regime"),
    ("build_base-image-size", lambda: keras_transfer().build_base("scratch", 16), ValueError, "image_size"),
    ("build_transfer_model-base", lambda: keras_transfer().build_transfer_model(None, tiny_keras_model(), "scratch"),
     TypeError, "base"),
    ("build_transfer_model-head", lambda: keras_transfer().build_transfer_model(tiny_keras_model(), "head", "scratch"),
     TypeError, "head"),
    ("build_transfer_model-regime", lambda: keras_transfer().build_transfer_model(
        tiny_keras_model(), tiny_keras_model(), "finetune"), ValueError, "regime"),
    ("unfreeze_top-name", lambda: keras_transfer().unfreeze_top(tiny_keras_model(), "block_16"), ValueError, "first_trainable"),
    ("unfreeze_top-index", lambda: keras_transfer().unfreeze_top(tiny_keras_model(), 3), TypeError, "first_trainable"),
    ("unfreeze_top-not-a-model", lambda: keras_transfer().unfreeze_top("mobilenet", "dense"), TypeError, "base"),
    ("extract_features-not-a-model", lambda: keras_transfer().extract_features(None, np.zeros((2, 4, 4, 3))),
     TypeError, "model"),
    ("extract_features-shape", lambda: keras_transfer().extract_features(tiny_keras_model(), np.zeros((2, 4))),
     ValueError, "images"),
    ("multiply_adds-not-a-model", lambda: keras_transfer().multiply_adds("mobilenet_v2"), TypeError, "model"),
    ("plot_misclassified-label-range", lambda: keras_transfer().plot_misclassified(
        np.zeros((2, 4, 4, 3)), [0, 5], [1, 1], ["ants", "bees"]), ValueError, "labels"),
    ("plot_misclassified-probabilities", lambda: keras_transfer().plot_misclassified(
        np.zeros((2, 4, 4, 3)), [0, 1], [1, 1], ["ants", "bees"], probabilities=[0.5, 0.7]), ValueError, "probabilities"),
    ("plot_misclassified-class-names", lambda: keras_transfer().plot_misclassified(
        np.zeros((2, 4, 4, 3)), [0, 1], [1, 1], "ants bees"), TypeError, "class_names"),
]


@pytest.mark.parametrize("call, error, argument", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_a_clear_error_naming_the_argument(call, error, argument):
    with pytest.raises(error) as raised:
        call()
    assert re.search(rf"(?<![\w.]){re.escape(argument)}(?!\w)", str(raised.value)), \
        f"the message should name {argument!r}: {raised.value}"
