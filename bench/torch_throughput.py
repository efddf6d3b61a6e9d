"""PyTorch's images/s for bench/train-throughput.ts: the recipe of torch_recipe.py (our trainer's:
batch 32 of uint8 images augmented and normalised per batch, dropout, Adam with L2 weight decay,
the loss read back every step) timed over N steps after a warm-up step, and inference (batch 100,
eval mode, no grad). Prints one JSON line per width.
Usage: /usr/bin/python3 bench/torch_throughput.py --widths 0.125,0.25,1 --steps 10 --threads 2 [--profile]"""
import argparse
import json
import time

import torch

from torch_recipe import BATCH, AlexNet, Trainer, blas_library, normalise, set_threads


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
    print(f'PyTorch {torch.__version__}, {torch.get_num_threads()} threads, BLAS {blas_library()}, width {width}: wall {wall:.1f} ms/step (profiling included)')
    print('| operator | calls/step | self ms/step | share of wall |\n|---|---:|---:|---:|')
    for e in rows:
        ms = e.self_cpu_time_total / 1000 / n
        if ms / wall < 0.005:
            continue
        print(f'| {e.key} | {e.count / n:.0f} | {ms:.2f} | {100 * ms / wall:.1f}% |')


def train_step_over(model, steps, classes, gen):
    """A step function that walks through (steps + 1) batches of random uint8 images."""
    images = torch.randint(0, 256, (BATCH * (steps + 1), 3, 32, 32), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, classes, (len(images),), generator=gen)
    trainer = Trainer(model, lr=1e-4, augment_images=True, seed=1)
    at = [0]

    def step():
        i = at[0] % (steps + 1) * BATCH
        at[0] += 1
        trainer.step(images[i:i + BATCH], labels[i:i + BATCH]).item()

    return step


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--widths', default='0.125,0.25,1')
    p.add_argument('--steps', type=int, default=10)
    p.add_argument('--full-steps', type=int, default=2)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--classes', type=int, default=100)
    p.add_argument('--profile', action='store_true', help='print the per-operator time of a training step (torch.profiler) instead')
    a = p.parse_args()
    set_threads(a.threads)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    for width in [float(w) for w in a.widths.split(',')]:
        steps = a.full_steps if width >= 1 else a.steps
        model = AlexNet(width, a.classes)
        train_step = train_step_over(model, steps, a.classes, gen)
        if a.profile:
            profile(train_step, steps, width)
            continue
        xi = normalise(torch.randint(0, 256, (100, 3, 32, 32), dtype=torch.uint8, generator=gen))

        def infer_step():
            model.eval()
            with torch.no_grad():
                model(xi)

        train = rate(train_step, steps, BATCH)
        print(json.dumps({'width': width, 'train': train, 'infer': rate(infer_step, steps, 100), 'threads': torch.get_num_threads(), 'blas': blas_library()}), flush=True)


if __name__ == '__main__':
    main()
