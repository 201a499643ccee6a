"""Task accuracy beside the brain scores: a model whose classes are those of a dataset insilico has (CIFAR-10,
MNIST digits) is scored on its held-out images; any other model gets a note saying why it has none."""
from __future__ import annotations

import numpy as np

from ..validation import check_count

__all__ = ["task_accuracy"]


def task_accuracy(subject, n: int = 1000) -> tuple[float, str]:
    """(accuracy on the first ``n`` test images, what was measured) — or (NaN, why not): no class outputs,
    classes of no dataset insilico has, or the dataset missing under ``INSILICO_DATA`` (the note names the
    folder and the fetch command)."""
    from .. import electrode as el
    from ..data import CIFAR10_CLASSES, DIGIT_CLASSES, DataNotFoundError, cifar10, mnist_test

    n = check_count("n", n)
    classes, shape = tuple(subject.class_names), tuple(subject.input_spec.shape)
    if not classes:
        return float("nan"), f"no task accuracy: {subject.name} has no class outputs"
    sets = {(CIFAR10_CLASSES, (32, 32, 3)): ("CIFAR-10 test", "cifar10_jpeg", lambda: cifar10("test")),
            (DIGIT_CLASSES, (28, 28, 1)): ("MNIST held-out", "mnist_test", lambda: mnist_test("heldout"))}
    hit = sets.get((classes, shape))
    if hit is None:
        return float("nan"), (f"no task accuracy: {subject.name}'s {len(classes)} classes on {shape} inputs are "
                              "those of no dataset insilico has")
    label, folder, load = hit
    try:
        data = load()
    except DataNotFoundError:
        return float("nan"), (f"no task accuracy: {label} needs {folder} under INSILICO_DATA (`insilico data fetch "
                              f"{folder} --source URL`)")
    n = min(n, len(data))
    correct = 0
    for start in range(0, n, 250):
        x = data.x[start:min(n, start + 250)]
        correct += int((np.asarray(el.run(subject, x)[0]).argmax(-1) == data.y[start:start + len(x)]).sum())
    return correct / n, f"top-1 accuracy on the first {n} {label} images"
