#!/usr/bin/env python3
"""Writes a small sequence-classification dataset for `rnnsimd train seq` (the README's example):

    python3 tools/make-sequence-demo.py majority.safetensors [--count 2000] [--seed 1]

Each sequence is 5..30 symbols drawn from a, b, c (one-hot, I = 3), padded with zeros to T = 30; its class is the
symbol that occurs most often (ties go to the earlier symbol). Guessing the most frequent class is right about 40 %
of the time; a recurrent network has to count. Tensors: inputs F32 (N, 30, 3), targets I64 (N) (integer: classification,
one per sequence), lengths I64 (N). Python's standard library only, deterministic for a seed.
"""
import argparse
import json
import random
import struct


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    T, I = 30, 3
    inputs, targets, lengths = [], [], []
    for _ in range(args.count):
        n = rng.randint(5, T)
        symbols = [rng.randrange(I) for _ in range(n)]
        counts = [symbols.count(s) for s in range(I)]
        targets.append(counts.index(max(counts)))
        lengths.append(n)
        for t in range(T):
            inputs.extend(1.0 if t < n and symbols[t] == s else 0.0 for s in range(I))
    blobs = [
        ("inputs", "F32", [args.count, T, I], struct.pack(f"<{len(inputs)}f", *inputs)),
        ("targets", "I64", [args.count], struct.pack(f"<{len(targets)}q", *targets)),
        ("lengths", "I64", [args.count], struct.pack(f"<{len(lengths)}q", *lengths)),
    ]
    header, offset = {}, 0
    for name, dtype, shape, data in blobs:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    header["__metadata__"] = {"source": "tools/make-sequence-demo.py", "seed": str(args.seed)}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)  # the data buffer starts 8-byte aligned, as the reference writer does
    with open(args.out, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for _, _, _, data in blobs:
            f.write(data)
    print(f"wrote {args.out}: {args.count} sequences of 5..{T} symbols, 3 classes")


if __name__ == "__main__":
    main()
