"""The same AlexNet as core/model/network.ts in PyTorch, timed the same way: images/s for training (Adam,
batch 32, dropout on) and inference (batch 100). Prints one JSON line per width.
Usage: python3 bench/torch_throughput.py --widths 0.125,0.25,1 --steps 10 --threads 2"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class AlexNet(nn.Module):
    def __init__(self, width, classes):
        super().__init__()
        u = lambda n: int(n * width)
        self.conv = nn.ModuleList([
            nn.Conv2d(3, u(96), 5, padding=2), nn.Conv2d(u(96), u(256), 5, padding=2),
            nn.Conv2d(u(256), u(384), 3, padding=1), nn.Conv2d(u(384), u(384), 3, padding=1),
            nn.Conv2d(u(384), u(256), 3, padding=1), nn.Conv2d(u(256), u(256), 3, padding=1),
        ])
        self.fc = nn.ModuleList([
            nn.Linear(u(256) * 16, u(4096)), nn.Linear(u(4096), u(4096)),
            nn.Linear(u(4096), u(4096)), nn.Linear(u(4096), classes),
        ])

    def forward(self, x):
        for i, c in enumerate(self.conv):
            x = F.relu(c(x))
            if i in (1, 3, 5):
                x = F.max_pool2d(x, 2)
        x = torch.flatten(x, 1)
        for fc in self.fc[:-1]:
            x = F.dropout(F.relu(fc(x)), 0.5, self.training)
        return F.log_softmax(self.fc[-1](x), dim=1)


def rate(step, n, batch):
    step()  # warm-up
    start = time.perf_counter()
    for _ in range(n):
        step()
    return n * batch / (time.perf_counter() - start)


def profile(step, n, width):
    """Self CPU time per operator over n training steps, as a markdown table (ms per step)."""
    from torch.profiler import ProfilerActivity, profile as run_profiled
    step()
    start = time.perf_counter()
    with run_profiled(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(n):
            step()
    wall = (time.perf_counter() - start) * 1000 / n
    rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    print(f'PyTorch {torch.__version__}, {torch.get_num_threads()} threads, width {width}: wall {wall:.1f} ms/step (profiling included)')
    print('| operator | calls/step | self ms/step | share of wall |\n|---|---:|---:|---:|')
    for e in rows:
        ms = e.self_cpu_time_total / 1000 / n
        if ms / wall < 0.005:
            continue
        print(f'| {e.key} | {e.count / n:.0f} | {ms:.2f} | {100 * ms / wall:.1f}% |')


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--widths', default='0.125,0.25,1')
    p.add_argument('--steps', type=int, default=10)
    p.add_argument('--full-steps', type=int, default=2)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--classes', type=int, default=100)
    p.add_argument('--profile', action='store_true', help='print the per-operator time of a training step (torch.profiler) instead')
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    for width in [float(w) for w in a.widths.split(',')]:
        steps = a.full_steps if width >= 1 else a.steps
        model = AlexNet(width, a.classes)
        opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-4)
        x, y = torch.randn(32, 3, 32, 32), torch.randint(0, a.classes, (32,))

        def train_step():
            model.train()
            opt.zero_grad()
            F.nll_loss(model(x), y).backward()
            opt.step()

        if a.profile:
            profile(train_step, steps, width)
            continue
        xi = torch.randn(100, 3, 32, 32)

        def infer_step():
            model.eval()
            with torch.no_grad():
                model(xi)

        print(json.dumps({'width': width, 'train': rate(train_step, steps, 32), 'infer': rate(infer_step, steps, 100)}), flush=True)


if __name__ == '__main__':
    main()
