"""fedslice's model and training recipe in PyTorch, for the benches that compare with it
(torch_throughput.py, torch_round.py, torch_memory.py): the AlexNet of core/model/spec.ts, and the
step of core/training/train.ts: batch 32 drawn from uint8 images, augmented (random horizontal flip,
random 32x32 crop of the image zero-padded by 4) and normalised per batch as core/data/batches.ts
does, dropout 0.5 after fc1-fc3, mean NLL of log-softmax, Adam (eps 1e-8) with L2 weight decay
added to the gradient. Augmentation and normalisation are tensor ops on the whole batch, inside
the timed step, as ours are inside our step."""
import ctypes
import os
import re

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 32
DROPOUT = 0.5
WEIGHT_DECAY = 1e-4
ADAM_EPS = 1e-8
CROP_PADDING = 4
SIDE = 32
# core/data/batches.ts: CIFAR100_MEAN and CIFAR100_STD (on pixel / 255)
MEAN = torch.tensor([0.5071, 0.4867, 0.4408]).view(1, 3, 1, 1)
STD = torch.tensor([0.2675, 0.2565, 0.2761]).view(1, 3, 1, 1)
RECORD = 2 + 3 * SIDE * SIDE  # CIFAR-100 binary record: coarse label, fine label, planar RGB bytes


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
            x = F.dropout(F.relu(fc(x)), DROPOUT, self.training)
        return F.log_softmax(self.fc[-1](x), dim=1)


def keep_freed_memory():
    """Tells glibc's malloc to keep freed memory instead of returning it to the kernel. By default
    every tensor over 128 KB is a fresh mmap and the heap's top is trimmed after each step, so each
    step's activations and gradients page-fault in again: 3,000-5,600 faults a step at width 1/8,
    twice the CPU time of a step (the ~1.7x between the old torch_throughput.py and torch_round.py,
    whose data loading happened to raise glibc's dynamic threshold). What jemalloc, tcmalloc or
    GLIBC_TUNABLES do for PyTorch users; fedslice's wasm heap never returns memory either."""
    libc = ctypes.CDLL('libc.so.6')
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 32 << 20)  # glibc's largest allowed value
    libc.mallopt(m_trim_threshold, 1 << 30)


def set_threads(n):
    """n compute threads; no inter-op pool (eager training never uses it); malloc set up as above."""
    keep_freed_memory()
    torch.set_num_threads(n)
    torch.set_num_interop_threads(1)


def blas_library():
    """The BLAS torch's Linear layers run on: Debian's torch links whatever libblas.so.3 the system
    alternative points to (the reference netlib BLAS unless OpenBLAS or BLIS is installed)."""
    with open('/proc/self/maps') as f:
        libs = {os.path.realpath(m.group(0)) for m in re.finditer(r'/\S*lib(?:open)?blas\S*\.so\S*', f.read())}
    return ', '.join(sorted(libs)) or 'unknown'


def read_records(path, n=None):
    """uint8 images [n, 3, 32, 32] and int64 fine labels of a CIFAR-format file (all of it by default)."""
    raw = np.fromfile(path, dtype=np.uint8, count=-1 if n is None else n * RECORD)
    raw = raw.reshape(-1, RECORD)
    return torch.from_numpy(raw[:, 2:].reshape(-1, 3, SIDE, SIDE).copy()), torch.from_numpy(raw[:, 1].astype(np.int64))


def normalise(images):
    return (images.float() / 255 - MEAN) / STD


def augment(images, gen):
    """Flip p=0.5 and a random crop of the zero-padded images, per image, on the uint8 batch:
    the crop is taken first and then flipped, as core/data/batches.ts does."""
    n, p = images.shape[0], CROP_PADDING
    padded = F.pad(images, (p, p, p, p))
    dy = torch.randint(0, 2 * p + 1, (n, 1), generator=gen)
    dx = torch.randint(0, 2 * p + 1, (n, 1), generator=gen)
    flip = torch.rand(n, 1, generator=gen) < 0.5
    cols = torch.arange(SIDE).expand(n, SIDE)
    cols = torch.where(flip, SIDE - 1 - cols, cols) + dx
    rows = torch.arange(SIDE) + dy
    b = torch.arange(n).view(n, 1, 1, 1)
    c = torch.arange(3).view(1, 3, 1, 1)
    return padded[b, c, rows.view(n, 1, SIDE, 1), cols.view(n, 1, 1, SIDE)]


def optimizer(model, lr):
    return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=WEIGHT_DECAY, eps=ADAM_EPS)


class Trainer:
    """One training step at a time over uint8 images, as core/training/train.ts takes them."""

    def __init__(self, model, lr, augment_images, seed):
        self.model, self.opt, self.augment = model, optimizer(model, lr), augment_images
        self.gen = torch.Generator().manual_seed(seed)

    def step(self, images, labels):
        """One step on a uint8 batch; returns the loss tensor (not synchronised to a float)."""
        x = normalise(augment(images, self.gen) if self.augment else images)
        self.model.train()
        self.opt.zero_grad(set_to_none=True)
        loss = F.nll_loss(self.model(x), labels)
        loss.backward()
        self.opt.step()
        return loss

    def epoch(self, images, labels, batch=BATCH):
        """One shuffled pass with a final partial batch; the mean loss over the samples."""
        order = torch.randperm(len(labels), generator=self.gen)
        total = 0.0
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            total += self.step(images[idx], labels[idx]).item() * len(idx)
        return total / len(order)


def accuracy(model, images, labels, batch):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(labels), batch):
            correct += (model(normalise(images[i:i + batch])).argmax(1) == labels[i:i + batch]).sum().item()
    return correct / len(labels)
