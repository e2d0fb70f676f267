"""Classification Accuracy Score (CAS), also called GAN-train.

Ravuri & Vinyals 2019, "Classification Accuracy Score for Conditional Generative Models", and
Shmelkov, Schmid & Alahari 2018, "How good is my GAN?" (their GAN-train): train a classifier on
generated samples, labelled with the classes they were conditioned on, and test it on real test
images. A generator whose samples carry the class information of the real data, and cover its
variety, gives a classifier close to one trained on real data; one that drops modes or mixes
classes does not. Its mirror image, GAN-test, is the accuracy of a classifier trained on real data
on the samples (condgan's judge accuracy, `condgan.metrics.discriminability.accuracy`).

Here the classifier is the judge's architecture trained with the judge's recipe
(`condgan.metrics.classifier.train_judge`: JudgeCNN, one-cycle AdamW, label-safe augmentation),
for `epochs` passes over the samples, seeded. Its reference is the judge (trained on the real
training set) on the same real test images.
"""

from __future__ import annotations

import numpy as np
import torch

from condgan.data import LabelledData
from condgan.metrics import _checks
from condgan.metrics.classifier import train_judge
from condgan.metrics.discriminability import accuracy

# Passes over the samples: 10,000 Fashion-MNIST samples cost 624 training steps (docs/evaluation.md,
# "Classification Accuracy Score", has the measured CPU time).
CAS_EPOCHS = 8


def classification_accuracy_score(
    gen_x: torch.Tensor, gen_y: np.ndarray, test: LabelledData, *, epochs: int = CAS_EPOCHS, seed: int = 0,
    progress: bool = False,
) -> dict[str, float]:
    """Accuracy on the real `test` set of a JudgeCNN trained on samples `gen_x` (N×C×H×W in [-1, 1])
    labelled `gen_y` (N ints in [0, num_classes)).

    The samples are treated as the dataset `test.name` (so that the same label-safe augmentation
    applies as for the judge). Same inputs, seed and thread count give the same numbers.

    Returns:
        {"cas": overall, "cas/class_{k}": on the real test images of class k}.
    """
    epochs = _checks.positive_int(epochs, "epochs")
    y = torch.from_numpy(_checks.labels(gen_y, len(gen_x), "gen_y", test.num_classes)).long()
    train = LabelledData(gen_x.float(), y, test.class_names, test.name)
    model, _, _ = train_judge(train, None, epochs=epochs, seed=seed, progress=progress)
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(test.x(slice(i, i + 1000))) for i in range(0, len(test), 1000)])
    acc = accuracy(logits.numpy(), test.y.numpy(), test.num_classes)
    return {k.replace("accuracy", "cas", 1): v for k, v in acc.items()}
