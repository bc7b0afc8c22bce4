"""How hard are the simulated labels for a linear model on pixels? (the table in data/README.md)

Logistic regression (standardised pixels, C = 1) trained on 70% of
``simulate(6000, size=32, seed=1)``, scored on the other 30%, on raw fluxes and on the asinh
stretch the networks see (``evaluate.raw_pixels``), against always answering the majority class.

    python benchmarks/pixel_baselines.py
"""

from __future__ import annotations

import numpy as np

from phys555_cl.evaluate import linear_probe, raw_pixels
from phys555_cl.galaxies import simulate

TASKS = {
    "smooth vs featured": "smooth_or_featured",
    "edge-on among featured": "edge_on",
    "odd feature among odd": "odd_feature",
    "redshift_high": "redshift_high",
}


def main() -> None:
    images, labels = simulate(6000, size=32, seed=1)
    n_train = int(0.7 * len(images))
    feats = {"raw fluxes": images.flatten(1), "`evaluate.raw_pixels` (asinh)": raw_pixels(images)}
    print("| task | " + " | ".join(feats) + " | majority class |")
    print("| --- |" + " --- |" * (len(feats) + 1))
    for name, key in TASKS.items():
        y = labels[key]
        scores = [linear_probe(f[:n_train], y[:n_train], f[n_train:], y[n_train:])
                  for f in feats.values()]
        ytr, yte = y[:n_train].numpy(), y[n_train:].numpy()
        ytr, yte = ytr[ytr >= 0], yte[yte >= 0]
        majority = float(np.mean(yte == np.bincount(ytr).argmax()))
        print(f"| {name} | " + " | ".join(f"{s:.3f}" for s in scores) + f" | {majority:.3f} |",
              flush=True)


if __name__ == "__main__":
    main()
