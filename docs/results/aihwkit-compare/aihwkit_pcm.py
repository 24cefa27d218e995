"""PCM programming and drift on an aihwkit 1.2 inference tile, as rapa_examples::pcm_drift:
a 100 x 200 tile whose column j holds -1 + 2j/199 in every row, PCMLikeNoiseModel(g_max=25),
no drift compensation, programmed once and read an hour, a day and a year later. One JSON line
per chip seed: for the programmed weights and each read, [mean, variance (n-1)] of the weights
of columns 0, 10, ..., 190.  Usage: aihwkit_pcm.py SEEDS   e.g. 1,2,3,4,5,6,7,8"""
import json
import sys

import numpy as np
import torch
from aihwkit.inference import PCMLikeNoiseModel
from aihwkit.simulator.configs import InferenceRPUConfig

ROWS, COLS, LEVELS, TIMES = 100, 200, 20, (3600.0, 86400.0, 3.15e7)


def stats(tile):
    w = tile.tile.get_weights().numpy().astype(np.float64)
    cols = [w[:, l * COLS // LEVELS] for l in range(LEVELS)]
    return [[float(c.mean()), float(c.var(ddof=1))] for c in cols]


for seed in [int(s) for s in sys.argv[1].split(",")]:
    torch.manual_seed(seed)
    cfg = InferenceRPUConfig()
    cfg.noise_model = PCMLikeNoiseModel(g_max=25.0)
    cfg.drift_compensation = None
    tile = cfg.tile_class(ROWS, COLS, cfg)
    target = np.tile(-1.0 + 2.0 * np.arange(COLS, dtype=np.float32) / (COLS - 1), (ROWS, 1))
    tile.set_weights(torch.tensor(target, dtype=torch.float32))
    tile.program_weights()
    reads = [stats(tile)]
    for t in TIMES:
        tile.drift_weights(t)
        reads.append(stats(tile))
    print(json.dumps({"seed": seed, "reads": reads}))
