#!/usr/bin/python3
"""Writes cases.txt: expected hashes of torch's antialiased bicubic resize of uint8 frames.

The resize is the one transformers' SmolVLMVideoProcessor runs on video frames: torchvision's
functional.resize(frame, [h, w], interpolation=BICUBIC, antialias=True) on a uint8 NCHW tensor,
which (torchvision 0.14, torch 1.13) casts to float32, calls
interpolate(mode="bicubic", antialias=True, align_corners=False), clamps to [0, 255], rounds half
to even and casts back to uint8.

Run it with Debian 12's python3-torch (1.13.1) and python3-torchvision (0.14.1) on an x86-64 CPU
with AVX2 (torch's default dispatch there; its no-AVX kernel rounds differently):

    /usr/bin/python3 tests/data/video_resize/generate.py > tests/data/video_resize/cases.txt

Frames are generated from a seed with splitmix64 (video_resize_test.cc does the same):
style 0 is uniform noise, style 1 black/white noise (heavy overshoot, so clamping matters),
style 2 random 8x8 blocks (flat areas and sharp edges, like real frames).

Each line: kind in_w in_h a b style seed fnv1a64. Kind R is one resize to a x b (width x height);
kind P is the processor's two resizes: longest edge to a (get_resize_output_image_size), then to
b x b. The hash is 64-bit FNV-1a over the output bytes in row-major RGB order.
"""
import os
import random
import sys

import numpy as np
import torch
import torchvision
import torchvision.transforms.functional as F
from torchvision.transforms import InterpolationMode

MASK = (1 << 64) - 1


def splitmix64_bytes(seed, n):
    state = seed & MASK
    out = bytearray()
    while len(out) < n:
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        z ^= z >> 31
        out += z.to_bytes(8, "little")
    return bytes(out[:n])


def make_frame(w, h, style, seed):
    """[h, w, 3] uint8."""
    if style == 2:
        bw, bh = (w + 7) // 8, (h + 7) // 8
        blocks = np.frombuffer(splitmix64_bytes(seed, bw * bh * 3), np.uint8).reshape(bh, bw, 3)
        return np.ascontiguousarray(blocks.repeat(8, axis=0).repeat(8, axis=1)[:h, :w])
    a = np.frombuffer(splitmix64_bytes(seed, w * h * 3), np.uint8).reshape(h, w, 3)
    if style == 1:
        a = np.where(a & 1, 255, 0).astype(np.uint8)
    return a


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & MASK
    return h


def resize(t, w, h):
    return F.resize(t, [h, w], interpolation=InterpolationMode.BICUBIC, antialias=True)


def longest_edge_size(w, h, longest_edge):
    """video_processing_smolvlm.get_resize_output_image_size -> (w, h)."""
    side = min(4096, longest_edge)
    aspect = w / h
    if w >= h:
        ow = side
        oh = int(ow / aspect)
        if oh % 2 != 0:
            oh += 1
    else:
        oh = side
        ow = int(oh * aspect)
        if ow % 2 != 0:
            ow += 1
    return max(ow, 1), max(oh, 1)


def run_case(kind, w, h, a, b, style, seed):
    frame = make_frame(w, h, style, seed)
    # transformers: numpy (T, H, W, C) -> permute(0, 3, 1, 2).contiguous()
    t = torch.from_numpy(frame.copy()).permute(2, 0, 1).unsqueeze(0).contiguous()
    if kind == "R":
        out = resize(t, a, b)
    else:
        ow, oh = longest_edge_size(w, h, a)
        out = resize(resize(t, ow, oh), b, b)
    return fnv1a64(out[0].permute(1, 2, 0).contiguous().numpy().tobytes())


def cases():
    rng = random.Random(20251202)
    seed = iter(range(1, 1 << 30))
    out = []

    def add(kind, w, h, a, b, style=None):
        out.append((kind, w, h, a, b, rng.randrange(3) if style is None else style, next(seed)))

    # The reported portrait case: 160x200, longest edge 128 (-> 102x128), and the processor's
    # full path with it at both tiny models' settings.
    for style in range(3):
        add("R", 160, 200, 102, 128, style)
    add("P", 160, 200, 128, 128, 0)
    add("P", 160, 200, 512, 128, 0)
    add("P", 200, 160, 528, 132, 2)
    # Tiny sides, up and down.
    for w, h, ow, oh in [(1, 1, 1, 2), (1, 1, 3, 5), (1, 2, 1, 1), (2, 1, 1, 1), (2, 2, 1, 1),
                         (2, 2, 5, 7), (1, 9, 4, 2), (9, 1, 2, 4), (3, 2, 2, 3), (1, 7, 1, 3),
                         (7, 1, 3, 1), (5, 5, 2, 1), (2, 1, 64, 32), (1, 2, 30, 61),
                         (64, 1, 3, 1), (1, 64, 1, 2), (17, 2, 5, 1), (2, 17, 1, 5)]:
        add("R", w, h, ow, oh)
    # One side unchanged (torch skips that pass).
    for w, h, ow, oh in [(50, 40, 50, 23), (50, 40, 77, 40), (33, 90, 33, 91), (90, 33, 12, 33)]:
        add("R", w, h, ow, oh)
    # Random sizes: portrait, landscape and square, up- and down-scaling, odd sizes.
    for _ in range(150):
        w = rng.choice([rng.randint(1, 12), rng.randint(1, 120), rng.randint(1, 320)])
        h = rng.choice([rng.randint(1, 12), rng.randint(1, 120), rng.randint(1, 320)])
        if rng.random() < 0.15:
            h = w
        ow = rng.choice([rng.randint(1, 16), rng.randint(1, 200), rng.randint(1, 300)])
        oh = rng.choice([rng.randint(1, 16), rng.randint(1, 200), rng.randint(1, 300)])
        if rng.random() < 0.15:
            oh = ow
        add("R", w, h, ow, oh)
    # Longest-edge targets the processors use, then square tiles.
    for _ in range(70):
        w, h = rng.randint(8, 300), rng.randint(8, 300)
        edge = rng.choice([128, 132, 256, 364, 384, 512])
        ow, oh = longest_edge_size(w, h, edge)
        add("R", w, h, ow, oh)
    for _ in range(40):
        w, h = rng.randint(8, 260), rng.randint(8, 260)
        tile = rng.choice([128, 132, 364, 384])
        add("R", w, h, tile, tile)
    # The processor's two resizes (longest edge = size.longest_edge, then the tile).
    for _ in range(40):
        w, h = rng.randint(1, 240), rng.randint(1, 240)
        edge, tile = rng.choice([(128, 128), (512, 128), (528, 132), (384, 384), (364, 364)])
        add("P", w, h, edge, tile)
    # Real frame sizes at the real settings (256M/500M: 2048 then 512; 2.2B: 1456 then 364).
    add("P", 640, 360, 2048, 512, 2)
    add("P", 360, 640, 1456, 364, 2)
    add("P", 480, 270, 512, 512, 0)
    return out


def main():
    cap = os.environ.get("ATEN_CPU_CAPABILITY", "")
    if cap not in ("", "avx2", "avx512"):
        sys.exit("run with torch's AVX2 kernels (unset ATEN_CPU_CAPABILITY)")
    print(f"# torch {torch.__version__}, torchvision {torchvision.__version__}; "
          "written by generate.py, do not edit")
    print("# kind in_w in_h a b style seed fnv1a64")
    for kind, w, h, a, b, style, seed in cases():
        digest = run_case(kind, w, h, a, b, style, seed)
        print(f"{kind} {w} {h} {a} {b} {style} {seed} {digest:016x}")


if __name__ == "__main__":
    main()
