"""One round of bench/round-vs-pytorch.ts in PyTorch, in one process: one epoch of torch_recipe.py's
recipe over the training images of a CIFAR-format folder (train.bin, test.bin; the bench writes the
very subsets our round uses), then one evaluation over its test images. Prints one JSON line with
the seconds and the test accuracy.
Usage: /usr/bin/python3 bench/torch_round.py --dir DIR --width 0.125 --classes 10 [--augment] [--seed 1]"""
import argparse
import json
import os
import time

import torch

from torch_recipe import AlexNet, Trainer, accuracy, blas_library, read_records, set_threads


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--dir', required=True)
    p.add_argument('--width', type=float, default=0.125)
    p.add_argument('--classes', type=int, default=10)
    p.add_argument('--eval-batch', type=int, default=64)  # the aggregator's (aggregator/run.ts)
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--augment', action='store_true')
    p.add_argument('--seed', type=int, default=1)
    p.add_argument('--threads', type=int, default=os.cpu_count())
    a = p.parse_args()
    set_threads(a.threads)
    torch.manual_seed(a.seed)
    xs, ys = read_records(os.path.join(a.dir, 'train.bin'))
    xt, yt = read_records(os.path.join(a.dir, 'test.bin'))
    model = AlexNet(a.width, a.classes)
    trainer = Trainer(model, a.lr, a.augment, a.seed)

    start = time.perf_counter()
    loss = trainer.epoch(xs, ys)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    acc = accuracy(model, xt, yt, a.eval_batch)
    eval_s = time.perf_counter() - start
    print(json.dumps({'threads': torch.get_num_threads(), 'blas': blas_library(), 'trainSeconds': train_s, 'evalSeconds': eval_s,
                      'trainLoss': loss, 'accuracy': acc, 'trainImages': len(ys), 'testImages': len(yt)}), flush=True)


if __name__ == '__main__':
    main()
