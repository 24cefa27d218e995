"""The softmax regression of rapa_examples::softmax on aihwkit 1.2 tiles, on the same data
(the same SplitMix64 + Box-Muller generator, bit for bit).

Usage: aihwkit_softmax.py RULES SEEDS [DATA_SEED]   e.g. sgd,tiki-taka,ttv2-chop0,c-ttv2,agad 1,2,3
Prints one JSON line per rule and tile seed: test error and mean |W|."""
import json
import math
import sys

import numpy as np
import torch
from aihwkit.simulator.configs import SingleRPUConfig, TransferCompound, UnitCellRPUConfig, build_config
from aihwkit.simulator.configs.devices import ConstantStepDevice
from aihwkit.simulator import presets

C, F, TRAIN, TEST, EPOCHS, BATCH, LR = 4, 16, 4000, 2000, 5, 10, 0.01
M64 = (1 << 64) - 1


class SplitMix:
    def __init__(self, seed):
        self.s = seed & M64

    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & M64
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)

    def uniform(self):
        return (self.next() >> 11) * (1.0 / (1 << 53))

    def normal(self):
        u1, u2 = self.uniform(), self.uniform()
        return math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(2.0 * math.pi * u2)


def problem(seed):
    g = SplitMix(seed)
    means = [0.55 * g.normal() for _ in range(C * F)]

    def blobs(n):
        x = np.ones((n, F + 1), dtype=np.float32)
        for b in range(n):
            c = b % C
            for j in range(F):
                x[b, j] = np.float32(means[c * F + j] + g.normal())
        return torch.tensor(x), np.arange(n) % C

    return blobs(TRAIN), blobs(TEST)


PRESETS = {
    "gokmen-vlasov": presets.GokmenVlasovPreset,
    "idealized": presets.IdealizedPreset,
    "reram-sb": presets.ReRamSBPreset,
    "capacitor": presets.CapacitorPreset,
    "tiki-taka-idealized": presets.TikiTakaIdealizedPreset,
    "tiki-taka-reram-sb": presets.TikiTakaReRamSBPreset,
}


def config(rule, seed):
    if rule in PRESETS:
        c = PRESETS[rule]()
        c.device.construction_seed = seed
        return c
    if rule == "mp":
        return build_config("mp", ConstantStepDevice, construction_seed=seed)
    if rule == "sgd":
        return SingleRPUConfig(device=ConstantStepDevice(construction_seed=seed))
    if rule == "tiki-taka":
        return UnitCellRPUConfig(
            device=TransferCompound(
                unit_cell_devices=[ConstantStepDevice(), ConstantStepDevice()], construction_seed=seed
            )
        )
    if rule == "ttv2-chop0":
        c = build_config("c-ttv2", ConstantStepDevice, construction_seed=seed)
        c.device.in_chop_prob = 0.0
        return c
    if rule.endswith("-tuned"):
        c = build_config(rule[: -len("-tuned")], ConstantStepDevice, construction_seed=seed)
        c.device.fast_lr = 1.0
        c.device.in_chop_prob = 0.02
        return c
    return build_config(rule, ConstantStepDevice, construction_seed=seed)


def main():
    rules, seeds = sys.argv[1].split(","), [int(s) for s in sys.argv[2].split(",")]
    (x, y), (xt, yt) = problem(int(sys.argv[3]) if len(sys.argv) > 3 else 4)
    for rule in rules:
        for seed in seeds:
            torch.manual_seed(seed)
            c = config(rule, seed)
            tile = c.tile_class(C, F + 1, c)
            tile.set_weights(torch.zeros(C, F + 1))
            tile.set_learning_rate(LR)
            for _ in range(EPOCHS):
                for s in range(0, TRAIN, BATCH):
                    xb = x[s : s + BATCH]
                    d = torch.softmax(tile.forward(xb), dim=1)
                    d[torch.arange(BATCH), torch.tensor(y[s : s + BATCH])] -= 1.0
                    tile.update(xb, d)
            error = float((tile.forward(xt).argmax(dim=1).numpy() != yt).mean())
            w = tile.tile.get_weights()
            print(json.dumps({"rule": rule, "seed": seed, "test_error": error, "mean_abs_w": float(w.abs().mean())}))


if __name__ == "__main__":
    main()
