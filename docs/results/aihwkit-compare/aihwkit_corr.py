"""aihwkit example 26 (correlation detection), batch over seeds; prints one line per algo/seed."""
import sys, json
import numpy as np
import torch
from torch import randn
from aihwkit.simulator.configs import build_config, ChoppedTransferCompound, DynamicTransferCompound
from aihwkit.simulator.configs.devices import SoftBoundsReferenceDevice
from aihwkit.simulator.presets.utils import StandardIOParameters

def cfg(algorithm, seed):
    sb = SoftBoundsReferenceDevice(dw_min=0.1, w_max_dtod=0.3, w_min_dtod=0.3, w_min=-1.0, w_max=1.0,
        up_down_dtod=0.0, up_down=0.0, dw_min_dtod=0.0, dw_min_std=0.0, slope_down_dtod=0.0,
        slope_up_dtod=0.0, enforce_consistency=True, dw_min_dtod_log_normal=True, mult_noise=False,
        subtract_symmetry_point=True)
    c = build_config(algorithm, sb, StandardIOParameters, construction_seed=seed)
    if isinstance(c.device, ChoppedTransferCompound):
        c.device.transfer_every = 1
        c.device.auto_granularity = 200
        c.device.auto_scale = True
        c.device.in_chop_random = False
    if isinstance(c.device, DynamicTransferCompound):
        c.device.tail_weightening = 5
    return c

n, t = 5, 5000
algos = sys.argv[1].split(",")
seeds = [int(s) for s in sys.argv[2].split(",")]
for algo in algos:
    for seed in seeds:
        torch.manual_seed(seed)
        w0 = 0.001 * randn(n, n)
        x = randn(t, n)
        d = 0.4 * x + 0.6 * randn(t, n)
        c = cfg(algo, seed)
        tile = c.tile_class(n, n, c)
        tile.set_weights(w0)
        tile.set_learning_rate(0.1)
        out = []
        for i in range(t):
            tile.update(x[i][None, :], d[i][None, :])
            if (i + 1) % 500 == 0:
                w = tile.tile.get_weights().numpy()
                on = np.diag(w)
                off = w[~np.eye(n, dtype=bool)]
                out.append([i + 1, float(on.mean()), float(off.mean()), float(off.std())])
        print(json.dumps({"algo": algo, "seed": seed, "trace": out}), flush=True)
