"""PyTorch's memory for the recipe bench/memory.ts measures fedslice on: the same AlexNet as
core/model/network.ts (bench/torch_recipe.py), Adam with weight decay, a few steps of batch 32 on
random images, plus a copy of the starting weights and the delta, as a trainer holds them. Prints one
JSON line: resident memory at each phase boundary and the process's peak (bytes).
Usage: python3 bench/torch_memory.py --width 1 --steps 3 --threads 2"""
import argparse
import json
import resource

import torch
import torch.nn.functional as F

from torch_recipe import AlexNet, optimizer


def rss():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--width', type=float, default=1.0)
    p.add_argument('--steps', type=int, default=3)
    p.add_argument('--batch', type=int, default=32)
    p.add_argument('--threads', type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    phases = {'started': rss()}
    model = AlexNet(a.width, 100)
    phases['variables'] = rss()
    start = [t.detach().clone() for t in model.parameters()]
    phases['start copy'] = rss()
    opt = optimizer(model, 1e-4)
    x = torch.randn(a.batch, 3, 32, 32)
    y = torch.randint(0, 100, (a.batch,))
    model.train()
    for step in range(a.steps):
        opt.zero_grad()
        F.nll_loss(model(x), y).backward()
        opt.step()
        if step == 0:
            phases['first step'] = rss()
    phases['trained'] = rss()
    delta = [t.detach() - s for t, s in zip(model.parameters(), start)]
    phases['delta'] = rss()
    params = sum(t.numel() for t in model.parameters())
    print(json.dumps({'torch': torch.__version__, 'parameters': params, 'phases': phases,
                      'peakRssBytes': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                      'deltaTensors': len(delta)}))


if __name__ == '__main__':
    main()
