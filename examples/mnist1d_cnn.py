"""MNIST-1D with the MNIST-1D paper's CNN: tune, retrain the best config, test accuracy.

    python examples/mnist1d_cnn.py [--trials 30] [--epochs 20] [--quick]

The data is generated offline by the `mnist1d` package (4000 train / 1000 test series of
length 40). The paper (Greydanus, 2020) reports test accuracy: logistic regression 32%,
MLP 68%, GRU 91%, CNN 94%. This script prints autolr's CNN beside that 94%.
"""

from __future__ import annotations

import argparse
import logging

import torch
from mnist1d.data import get_dataset_args, make_dataset  # offline; get_dataset hits the network

import autolr

PAPER_TEST_ACCURACY = {"logistic regression": 0.32, "MLP": 0.68, "GRU": 0.91, "CNN": 0.94}


class PaperCNN(torch.nn.Module):
    """The paper's ConvBase: three stride-2 convolutions of 25 channels, then a linear layer."""

    def __init__(self, channels: int = 25) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv1d(1, channels, 5, stride=2, padding=1)
        self.conv2 = torch.nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        self.conv3 = torch.nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        self.linear = torch.nn.Linear(channels * 5, 10)  # length 40 -> 19 -> 10 -> 5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(1)  # (batch, 40) -> (batch, 1 channel, 40)
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        x = torch.relu(self.conv3(x))
        return self.linear(x.flatten(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--report", default=None, help="write the HTML report here")
    parser.add_argument("--quick", action="store_true", help="a few short trials (for tests)")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.epochs = 3, 1
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    data = make_dataset(get_dataset_args())
    x, y = data["x"].astype("float32"), data["y"]
    x_test = torch.tensor(data["x_test"], dtype=torch.float32)
    y_test = torch.tensor(data["y_test"])

    result = autolr.tune(PaperCNN, (x, y), n_trials=args.trials, epochs=args.epochs,
                         progress=not args.quick)
    print(result.summary())
    # Retrain the best config on 90% of the training series (the last 10% only watch
    # it train), then measure on the held-out test set, as the paper does.
    split = len(x) * 9 // 10
    model, metrics = autolr.train(PaperCNN, ((x[:split], y[:split]), (x[split:], y[split:])),
                                  result.best_config, epochs=args.epochs)
    model.eval()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(dim=1) == y_test).float().mean().item()
    print(f"\ntest accuracy, autolr's best config: {accuracy:.1%}  "
          f"(paper: CNN {PAPER_TEST_ACCURACY['CNN']:.0%}, GRU {PAPER_TEST_ACCURACY['GRU']:.0%}, "
          f"MLP {PAPER_TEST_ACCURACY['MLP']:.0%}, "
          f"logistic regression {PAPER_TEST_ACCURACY['logistic regression']:.0%})")
    if args.report:
        print(f"report: {result.report(args.report)}")


if __name__ == "__main__":
    main()
