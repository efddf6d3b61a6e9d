"""One round of bench/round-vs-pytorch.ts in PyTorch, in one process: one epoch of Adam (batch 32,
weight decay 1e-4, dropout on, no augmentation) over the first N training images of a CIFAR-format
folder, then one evaluation over the first M test images. Prints one JSON line with the seconds.
Usage: python3 bench/torch_round.py --dir data/synthetic --train 5000 --test 1000 --width 0.125 --classes 10"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_throughput import AlexNet  # noqa: E402  the model, defined once for the benches

RECORD = 2 + 3072  # coarse label, fine label, 32x32x3 planar bytes
MEAN = np.array([0.5071, 0.4865, 0.4409], dtype=np.float32).reshape(1, 3, 1, 1)
STD = np.array([0.2673, 0.2564, 0.2762], dtype=np.float32).reshape(1, 3, 1, 1)


def read(path, n):
    raw = np.fromfile(path, dtype=np.uint8, count=n * RECORD).reshape(n, RECORD)
    x = (raw[:, 2:].reshape(n, 3, 32, 32).astype(np.float32) / 255 - MEAN) / STD
    return torch.from_numpy(x), torch.from_numpy(raw[:, 1].astype(np.int64))


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--dir', required=True)
    p.add_argument('--train', type=int, default=5000)
    p.add_argument('--test', type=int, default=1000)
    p.add_argument('--width', type=float, default=0.125)
    p.add_argument('--classes', type=int, default=10)
    p.add_argument('--batch', type=int, default=32)
    p.add_argument('--eval-batch', type=int, default=500)
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--threads', type=int, default=os.cpu_count())
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    xs, ys = read(os.path.join(a.dir, 'train.bin'), a.train)
    xt, yt = read(os.path.join(a.dir, 'test.bin'), a.test)
    model = AlexNet(a.width, a.classes)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, weight_decay=1e-4, eps=1e-8)

    start = time.perf_counter()
    model.train()
    order = torch.randperm(a.train)
    for i in range(0, a.train, a.batch):
        idx = order[i:i + a.batch]
        opt.zero_grad()
        F.nll_loss(model(xs[idx]), ys[idx]).backward()
        opt.step()
    train_s = time.perf_counter() - start

    start = time.perf_counter()
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, a.test, a.eval_batch):
            correct += (model(xt[i:i + a.eval_batch]).argmax(1) == yt[i:i + a.eval_batch]).sum().item()
    eval_s = time.perf_counter() - start
    print(json.dumps({'threads': torch.get_num_threads(), 'trainSeconds': train_s, 'evalSeconds': eval_s, 'accuracy': correct / a.test}), flush=True)


if __name__ == '__main__':
    main()
