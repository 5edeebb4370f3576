"""Knowledge-distillation benchmark: does the distilled student recover half of the gap to its teacher?

    python -m companion.bench distillation [--seeds 0 1 2]

Re-runs the chapter's recipe (``companion.compression.distillation.DistillationConfig``) for each
seed: train the CNN teacher on the first 10,000 MNIST training images, compute its logits on them once,
then train the MLP student twice from the same initialisation, with the same mini-batches, optimizer
and epochs: on the labels alone (from scratch) and with the distillation loss of Hinton et al. (2015).
Prints, per seed, the test accuracies (full 10,000-image test set) and the target: a student with
at least 10x fewer parameters recovers at least half of the accuracy gap between the student trained
alone and the teacher, (acc_distilled - acc_scratch) >= 0.5 (acc_teacher - acc_scratch), with
acc_teacher > acc_scratch. CPU, one thread (small models), one to two minutes of CPU time per seed.
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m companion.bench distillation", description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)

    import torch

    from companion.compression import distillation as kd
    from companion.compression.measure import count_parameters
    from companion.training import accuracy, mnist_tensors

    torch.set_num_threads(1)  # small models: one thread is fastest on a CPU
    recipe = kd.DistillationConfig()
    x_train, y_train, _, _, x_test, y_test = mnist_tensors(recipe.n_train, shape="channel")
    ratio = count_parameters(kd.teacher_cnn()) / count_parameters(kd.student_mlp(recipe.student_hidden))
    print(recipe)
    print(f"parameters: teacher / student = {ratio:.1f}x (target >= 10x): {'PASS' if ratio >= 10 else 'FAIL'}")
    print(f"{'seed':>4} {'teacher':>8} {'scratch':>8} {'distilled':>10} {'recovered':>10} {'cpu s':>6}  target")
    results = []
    for seed in args.seeds:
        cpu = time.process_time()
        torch.manual_seed(seed)
        teacher = kd.teacher_cnn()
        kd.train_teacher(teacher, x_train, y_train, recipe, seed=seed, progress=False)
        teacher_logits = kd.predict_logits(teacher, x_train)
        accuracies = {"teacher": accuracy(teacher, x_test, y_test)}
        for mode, logits in (("scratch", None), ("distilled", teacher_logits)):
            torch.manual_seed(seed)  # the same initialisation for both students
            student = kd.student_mlp(recipe.student_hidden)
            kd.train_student(student, x_train, y_train, recipe, teacher_logits=logits, seed=seed, progress=False)
            accuracies[mode] = accuracy(student, x_test, y_test)
        gap = accuracies["teacher"] - accuracies["scratch"]
        recovered = (accuracies["distilled"] - accuracies["scratch"]) / gap if gap > 0 else float("nan")
        passed = gap > 0 and accuracies["distilled"] - accuracies["scratch"] >= 0.5 * gap
        results.append(passed)
        print(f"{seed:>4} {accuracies['teacher']:>8.4f} {accuracies['scratch']:>8.4f} {accuracies['distilled']:>10.4f} "
              f"{recovered:>10.2f} {time.process_time() - cpu:>6.1f}  {'PASS' if passed else 'FAIL'}", flush=True)
    print(f"target (recovered >= 0.50 of the gap, teacher > scratch) met on {sum(results)}/{len(results)} seeds")
    return 0 if all(results) and ratio >= 10 else 1


if __name__ == "__main__":
    sys.exit(main())
