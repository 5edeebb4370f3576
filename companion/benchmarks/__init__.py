"""The course's benchmarks: one module per chapter whose figures need more than a chapter's minutes.

Run them by name with ``python -m companion.bench NAME [options]`` (``--help`` after the name lists its
options), or all of them with ``python -m companion.bench all``. Each prints its measured figures and,
where the course states a target, PASS or FAIL; it exits 1 when a target fails.
"""

#: name -> what it measures (the module ``companion.benchmarks.<name>`` holds it, with ``main(argv)``).
BENCHMARKS = {
    "optim": "Adam step time of the reference optimizer against torch.optim.Adam (10M parameters)",
    "pruning": "90% sparsity: accuracy loss, gzipped size, latency of unstructured and structured pruning",
    "quantization": "float32, int8 (dynamic, static, QAT, TFLite) and NF4: size, CPU latency, accuracy",
    "distillation": "teacher, student alone and distilled student: accuracy gap recovered",
    "lora": "full fine-tuning, LoRA and QLoRA: trainable parameters, optimizer state, accuracy",
    "transfer_learning": "MobileNetV2 features by input size; seconds per epoch of each transfer regime",
    "dqn": "DQN on CartPole-v1: environment steps and seconds to solve, per seed, PyTorch and Keras",
    "sentiment": "IMDB sentiment: the chapter's recurrent network on all 25,000 reviews, accuracy and seconds",
    "search": "DE and simulated annealing against scipy; CartPole solved by CMA-ES and a GA; two Optuna workers",
    "hardware": "eager vs torch.compile, float32 vs bfloat16, DataLoader 0 vs 2 workers, 1 vs 2 DDP processes",
}

__all__ = ["BENCHMARKS"]
