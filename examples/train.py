#!/usr/bin/env python3
"""A tiny "training" script for the experiments example (standard library only).

It fits y = w * x by gradient descent on the CSV files in a data folder, for a given
learning rate and number of epochs, and writes its metrics to a JSON file that
`trove exp run --metrics-file` records: the final accuracy, the final loss, and the loss
at every epoch as a series.

    python3 train.py --data data --lr 0.05 --epochs 20 --metrics metrics.json [--model model.json]

With --model it also writes the fitted weight, the "model" that examples/models.sh registers.
"""

import argparse
import csv
import json
import os


def load(folder):
    points = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".csv"):
            with open(os.path.join(folder, name), newline="") as f:
                for row in csv.reader(f):
                    points.append((float(row[0]), float(row[1])))
    if not points:
        raise SystemExit(f"no CSV rows found in {folder}")
    return points


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="data")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--metrics", default="metrics.json")
    parser.add_argument("--model", help="also write the fitted model (its weight) to this JSON file")
    args = parser.parse_args()

    points = load(args.data)
    w = 0.0
    losses = []
    for epoch in range(args.epochs):
        grad = sum(2 * (w * x - y) * x for x, y in points) / len(points)
        w -= args.lr * grad
        loss = sum((w * x - y) ** 2 for x, y in points) / len(points)
        losses.append(round(loss, 6))
        print(f"epoch {epoch + 1:2d}  w={w:.4f}  loss={loss:.4f}")
    # "Accuracy": the share of points predicted within 10%.
    hits = sum(1 for x, y in points if abs(w * x - y) <= 0.1 * abs(y) + 1e-9)
    metrics = {"acc": round(hits / len(points), 4), "final_loss": losses[-1], "loss": losses}
    with open(args.metrics, "w") as f:
        json.dump(metrics, f, indent=2)
    print(f"accuracy {metrics['acc']:.2%}")
    if args.model:
        with open(args.model, "w") as f:
            json.dump({"w": w, "lr": args.lr, "epochs": args.epochs}, f, indent=2)


if __name__ == "__main__":
    main()
