"""Bad input across companion: a clear ValueError/TypeError that names the argument, never a silent result
or an error from deep inside a framework. Correct but unusual input (half-precision gradients) works."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from companion import optim, schedules  # noqa: E402
from companion.optim.torch_adapter import ReferenceOptimizer  # noqa: E402


def test_large_finite_half_and_single_precision_gradients_are_accepted():
    # 1,000 entries of 60,000 sum to 6e7, far beyond float16's 65,504, yet every entry is finite.
    grads = [torch.full((1000,), 60_000.0, dtype=torch.float16)]
    optim.check_gradients(grads)
    optim.check_gradients([torch.full((10,), 3e38)])  # a float32 sum would overflow to inf
    optim.check_gradients([np.full(10, 3e38, dtype=np.float32)])
    for bad in ([torch.tensor([1.0, math.inf])], [torch.tensor([math.nan], dtype=torch.float16)], [np.array([np.nan])]):
        with pytest.raises(ValueError, match="NaN or inf"):
            optim.check_gradients(bad)
    model = torch.nn.Linear(4, 1).half()
    opt = ReferenceOptimizer(model.parameters(), optim.sgd(1e-6))
    for p in model.parameters():
        p.grad = torch.full_like(p, 60_000.0)
    opt.step()  # refused before: the finiteness check summed in float16


def test_an_infinite_learning_rate_and_a_bad_schedule_value_are_refused():
    with pytest.raises(ValueError, match="learning_rate"):
        optim.adam(learning_rate=math.inf)
    params = [np.zeros(2)]
    for value in (-0.1, math.nan, math.inf):
        opt = optim.sgd(lambda step, v=value: v)
        with pytest.raises(ValueError, match="learning_rate.*schedule returned"):
            opt.update([np.ones(2)], opt.init(params), params)
    opt = optim.sgd(schedules.cosine_decay(0.1, 10))  # a real schedule is fine
    opt.update([np.ones(2)], opt.init(params), params)


def test_the_torch_adapter_refuses_what_it_would_otherwise_ignore():
    model = torch.nn.Linear(3, 2)
    with pytest.raises(ValueError, match="parameter group 0 sets lr.*'transformation'"):
        ReferenceOptimizer([{"params": [model.weight], "lr": 1e-2}, {"params": [model.bias]}], optim.adam(1e-3))
    with pytest.raises(TypeError, match="parameter group 1 has no 'transformation'"):
        ReferenceOptimizer([{"params": [model.weight], "transformation": optim.adam(1e-3)}, {"params": [model.bias]}])
    with pytest.raises(TypeError, match="parameter group 0: 'transformation'"):
        ReferenceOptimizer([{"params": [model.weight], "transformation": torch.optim.Adam}], optim.adam(1e-3))
    opt = ReferenceOptimizer(model.parameters(), optim.adam(1e-3))
    with pytest.raises(KeyError, match="companion.schedules"):
        torch.optim.lr_scheduler.StepLR(opt, step_size=10)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    with pytest.raises(ValueError, match="another optimizer"):
        ReferenceOptimizer(model.parameters(), optim.adagrad(0.1)).load_state_dict(opt.state_dict())
    with pytest.raises(TypeError, match="state_dict"):
        ReferenceOptimizer(model.parameters(), optim.adam(1e-3)).load_state_dict({"state": {}})
    same = ReferenceOptimizer(model.parameters(), optim.adam(1e-3))
    same.load_state_dict(opt.state_dict())  # the same chain loads fine


def test_compression_helpers_refuse_empty_and_repeated_input():
    from companion.compression.lora import apply_lora
    from companion.compression.quantization import QuantizableMLP, minmax_qparams, static_int8

    with pytest.raises(ValueError, match="calibration_x is empty"):
        static_int8(QuantizableMLP((4, 3, 2)), torch.zeros(0, 4))
    with pytest.raises(TypeError, match="calibration_x"):
        static_int8(QuantizableMLP((4, 3, 2)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="x is empty"):
        minmax_qparams(torch.zeros(0))
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    apply_lora(model, rank=2, target=["0"], trainable=["2"])
    with pytest.raises(ValueError, match="already has LoRA adapters"):
        apply_lora(model, rank=2)


def test_text_helpers_refuse_a_string_where_a_list_is_expected_and_ids_beyond_the_vocabulary():
    from companion.sentiment import SentimentRNN, Tokenizer, Vocabulary, encode_texts

    tok = Tokenizer()
    with pytest.raises(TypeError, match="token_lists"):
        Vocabulary.build("a great film")
    with pytest.raises(TypeError, match=r"token_lists\[0\]"):
        Vocabulary.build(["a great film"])
    vocab = Vocabulary.build([tok("a great film")])
    with pytest.raises(TypeError, match="texts"):
        encode_texts("a great film", tok, vocab, max_len=5)
    model = SentimentRNN(len(vocab), 4, 4)
    with pytest.raises(ValueError, match="ids must lie in"):
        model(torch.tensor([[2, len(vocab)]]), torch.tensor([2]))


def test_dqn_configuration_and_environment_errors_come_early_and_clear():
    pytest.importorskip("gymnasium")
    from companion.rl import DQNConfig, make_env
    from companion.rl.dqn import train_dqn

    with pytest.raises(TypeError, match="hidden"):
        DQNConfig(hidden=256)
    with pytest.raises(ValueError, match="epsilon_start"):
        DQNConfig(epsilon_start=1.5)
    with pytest.raises(ValueError, match="env_id"):
        make_env("NoSuchEnvironment-v0")
    with pytest.raises(ValueError, match="Box action space"):
        train_dqn(DQNConfig(env_id="Pendulum-v1", total_steps=10, learning_starts=1, batch_size=2, eval_every=0),
                  progress=False)


def test_an_empty_training_set_is_refused():
    from companion.training import mlp, train_classifier

    with pytest.raises(ValueError, match="x_train is empty"):
        train_classifier(mlp((2, 2)), optim.sgd(0.1), torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), progress=False)


def test_sgd_torch_options_are_checked():
    with pytest.raises(ValueError, match="dampening.*Nesterov"):
        optim.sgd(0.1, momentum=0.9, nesterov=True, dampening=0.1)
    with pytest.raises(ValueError, match="dampening"):
        optim.sgd(0.1, momentum=0.9, dampening=1.5)
    with pytest.raises(ValueError, match="dampening.*momentum is 0"):
        optim.sgd(0.1, dampening=0.5)
    with pytest.raises(ValueError, match="torch options"):
        optim.sgd(0.1, momentum=0.9, maximize=True, convention="keras")
    with pytest.raises(TypeError, match="maximize"):
        optim.sgd(0.1, maximize="yes")
    with pytest.raises(TypeError, match="amsgrad"):
        optim.adam(0.1, amsgrad=1)


def test_adagrad_lr_decay_is_checked():
    with pytest.raises(ValueError, match="lr_decay"):
        optim.adagrad(0.1, lr_decay=-0.1)
    with pytest.raises(ValueError, match="lr_decay"):
        optim.adagrad(0.1, lr_decay=0.1, convention="keras")
    with pytest.raises(ValueError, match="lr_decay"):
        optim.adagrad(schedules.constant(0.1), lr_decay=0.1)
