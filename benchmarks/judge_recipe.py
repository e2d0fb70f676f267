"""Judge recipe and CAS cost: train one JudgeCNN configuration on the real Fashion-MNIST training
set (or, with --cas, on the first N training images as stand-in "samples") and print its real test
accuracy and the process CPU time of the training.

    python benchmarks/judge_recipe.py --epochs 8 --dropout 0.1 --threads 1
    python benchmarks/judge_recipe.py --cas 10000 --threads 1      # CAS of 10,000 real images

The numbers in docs/evaluation.md ("Judges", "Classification Accuracy Score") came from these
commands; CPU time is `time.process_time()` over `train_judge` alone (data loading excluded).
"""

from __future__ import annotations

import argparse
import platform
import time

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, help="default: the judge recipe's (or CAS_EPOCHS with --cas)")
    p.add_argument("--dropout", type=float)
    p.add_argument("--shift", type=int)
    p.add_argument("--widths", default="32,64,128")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--cas", type=int, metavar="N", help="train on the first N training images, CAS-style")
    p.add_argument("--data-dir")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from condgan.data import load_dataset
    from condgan.metrics.cas import CAS_EPOCHS, classification_accuracy_score
    from condgan.metrics.classifier import JUDGE_DROPOUT, JUDGE_EPOCHS, JUDGE_SHIFT, train_judge

    train = load_dataset("fashion-mnist", "train", data_dir=args.data_dir)
    test = load_dataset("fashion-mnist", "test", data_dir=args.data_dir)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} thread(s)")
    t0, w0 = time.process_time(), time.perf_counter()
    if args.cas:
        epochs = args.epochs or CAS_EPOCHS
        sub = train.subset(slice(0, args.cas))
        out = classification_accuracy_score(sub.x(), sub.y.numpy(), test, epochs=epochs, seed=args.seed)
        acc, what = out["cas"], f"CAS of {args.cas} real training images, {epochs} epochs"
    else:
        kw = dict(epochs=args.epochs or JUDGE_EPOCHS, dropout=JUDGE_DROPOUT if args.dropout is None else args.dropout,
                  shift=JUDGE_SHIFT if args.shift is None else args.shift,
                  widths=tuple(int(w) for w in args.widths.split(",")), seed=args.seed)
        _, acc, _ = train_judge(train, test, progress=False, **kw)
        what = f"judge {kw}"
    cpu, wall = time.process_time() - t0, time.perf_counter() - w0
    print(f"{what}: real test accuracy {acc:.4f}, {cpu:.0f} CPU-s ({cpu / 60:.1f} CPU-min), {wall:.0f} s wall")


if __name__ == "__main__":
    main()
