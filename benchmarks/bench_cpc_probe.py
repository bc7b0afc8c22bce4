"""CPC on simulated light curves: linear-probe quality against the same network at random init.

Trains `phys555_cl.cpc.CPC` on `LightCurves` with notebook 07's sizes (normal mode unless
PHYS555_FAST=1, or override on the command line), then fits linear probes on the frozen
mean-pooled contexts of the training curves and scores them on held-out curves:
class accuracy (logistic regression) and log10-period R^2 / rms (ridge). The baseline is
the untrained network with the same initial weights, measured in the same run.

    python benchmarks/bench_cpc_probe.py                    # notebook 07 normal sizes
    python benchmarks/bench_cpc_probe.py --epochs 10 --n-train 2000
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from phys555_cl import config, cpc
from phys555_cl.lightcurves import LightCurves


def probe(net, train, test, pool):
    f_train = cpc.embed(net, train, pool=pool).numpy()
    f_test = cpc.embed(net, test, pool=pool).numpy()
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    clf.fit(f_train, train.labels["star_class"].numpy())
    reg = make_pipeline(StandardScaler(), Ridge(alpha=1.0))
    reg.fit(f_train, train.labels["log_period"].numpy())
    p_test = test.labels["log_period"].numpy()
    rms = float(np.sqrt(np.mean((reg.predict(f_test) - p_test) ** 2)))
    return {
        "class accuracy": clf.score(f_test, test.labels["star_class"].numpy()),
        "log P R^2": reg.score(f_test, p_test),
        "log P rms [dex]": rms,
    }


def main():
    S = config.sizes("07")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=S.n_sequences)
    parser.add_argument("--n-test", type=int, default=S.n_test)
    parser.add_argument("--epochs", type=int, default=S.epochs)
    parser.add_argument("--batch-size", type=int, default=S.batch_size)
    parser.add_argument("--lr", type=float, default=S.lr)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--pool", default=S.pool, choices=["mean", "last"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    train = LightCurves(args.n_train, seed=args.seed, n_samples=S.n_samples)
    test = LightCurves(args.n_test, seed=args.seed, offset=args.n_train, n_samples=S.n_samples)
    torch.manual_seed(args.seed)

    def build():
        return cpc.CPC(in_channels=2, z_dim=S.z_dim, c_dim=S.c_dim, n_steps=S.n_steps,
                       strides=(4, 3, 2), temperature=args.temperature)

    model, random_init = build(), build()
    random_init.load_state_dict(model.state_dict())
    device = config.device()
    start = time.perf_counter()
    history = cpc.train_cpc(model, train, epochs=args.epochs, batch_size=args.batch_size,
                            lr=args.lr, device=device, seed=args.seed)
    seconds = time.perf_counter() - start
    random_init.to(device)

    print(f"device {config.device_name(device)}; {args.n_train} training / {args.n_test} "
          f"held-out curves; {len(history['loss'])} steps in {seconds:.0f} s; final loss "
          f"{np.mean(history['loss'][-20:]):.3f} (log N = "
          f"{np.log(args.batch_size * S.n_samples // 24):.3f})")
    batch = test.x[: args.batch_size].to(device)
    print("top-1 prediction accuracy per k, CPC:",
          np.round(cpc.prediction_accuracy(model, batch).numpy(), 3),
          " random init:", np.round(cpc.prediction_accuracy(random_init, batch).numpy(), 3))
    ours, base = probe(model, train, test, args.pool), probe(random_init, train, test, args.pool)
    print(f"\nheld-out linear probe on {args.pool}-pooled c_t")
    print(f"{'metric':<18} {'random init':>12} {'CPC':>8} {'CPC / random':>13}")
    for key in ours:
        print(f"{key:<18} {base[key]:>12.3f} {ours[key]:>8.3f} {ours[key] / base[key]:>13.2f}")


if __name__ == "__main__":
    main()
