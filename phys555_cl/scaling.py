"""Does the payoff of self-supervision grow with the pretraining? The scaling study's results.

``benchmarks/pretraining_scaling.py`` trains SimCLR at several *points* (the ``default``
recipe with more unlabelled galaxies, epochs, width or pixels) and runs the payoff study on
each (:func:`phys555_cl.study.payoff_study`, 20 and 200 labels); every point is one JSON
file. Here they are read (:func:`load_scaling`), put on one axis of cost
(:func:`relative_compute`), tabulated (:func:`scaling_table`) and drawn (:func:`plot_scaling`),
for the benchmark, ``data/pretrained/README.md`` and notebook 06::

    results = load_scaling("data/pretrained/scaling/evaluation")
    print(scaling_table(results))
    plot_scaling(results)
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from phys555_cl.study_results import paired_between, scores_by_subset
from phys555_cl.study_retrieval import RARE_KINDS
from phys555_cl.train import make_config

__all__ = ["ARMS", "COUNTS", "ablation_table", "find_comparison", "format_difference",
           "load_scaling", "mean_accuracy", "paired_to", "plot_scaling", "relative_compute",
           "scaling_table", "temperature"]

#: The label counts and the SimCLR arms of the scaling study (each against ``supervised``).
COUNTS = (20, 200)
ARMS = ("simclr + linear", "simclr + fine-tune")


def load_scaling(folder) -> list[dict]:
    """Every point's result in ``folder`` (``<point>.json``; files starting with ``_`` are
    caches), cheapest first (at one compute, the higher temperature first).

    Raises:
        FileNotFoundError: no result in ``folder`` (the message says how to make some).
    """
    files = sorted(Path(folder).glob("[!_]*.json"))
    if not files:
        raise FileNotFoundError(f"no scaling results in {folder}: run "
                                f"benchmarks/pretraining_scaling.py --points ... first")
    return _in_order([json.loads(f.read_text(encoding="utf-8")) for f in files])


def relative_compute(result: dict) -> float:
    """Pretraining compute in units of ``default``'s: images seen, times the cost of one image
    relative to the default encoder (width^2 of the compact encoder's convolutions, and the
    image area). A number fixed by the recipe, unlike the measured core-hours, which grow
    when other jobs share the machine."""
    cfg, base = result["config"], make_config("default")
    per_image = (cfg["width"] / base["width"]) ** 2 * (cfg["image_size"] / base["image_size"]) ** 2
    return result["cost"]["images_seen"] / (2 * base["n_train"] * base["epochs"]) * per_image


def find_comparison(result: dict, method: str, labels: int) -> dict | None:
    """The paired comparison of ``method`` against ``supervised`` at ``labels`` in a point's
    result (``difference``, ``low``, ``high`` as fractions), or None."""
    return next((c for c in result["comparisons"]
                 if c["method"] == method and c["labels"] == labels), None)


def _finite(v) -> bool:
    return v is not None and math.isfinite(v)


def format_difference(c: dict | None) -> str:
    """A comparison as ``+1.1 [+0.2, +2.1]`` (points), ``+1.1`` without an interval, or ``-``."""
    if c is None or not _finite(c["difference"]):
        return "-"
    if not _finite(c["low"]):  # one pair: no interval
        return f"{100 * c['difference']:+.1f}"
    return f"{100 * c['difference']:+.1f} [{100 * c['low']:+.1f}, {100 * c['high']:+.1f}]"


def temperature(result: dict) -> float:
    """The NT-Xent temperature a point was pretrained with (its series in table and figure)."""
    return result["config"]["temperature"]


def _in_order(results: list[dict]) -> list[dict]:
    """Cheapest first; at one compute, the higher temperature first."""
    return sorted(results, key=lambda r: (relative_compute(r), -temperature(r)))


def scaling_table(results: list[dict]) -> str:
    """The scaling table as Markdown: one row per point, cheapest first."""
    results = _in_order(results)
    head = ["point", "temperature", "compute × default", "core-h measured", "loss",
            "kNN smooth", "kNN odd"]
    head += [f"{m.split(' + ')[-1]} @{n}" for n in COUNTS for m in ARMS]
    head += [f"p@10 {k} h/raw" for k in RARE_KINDS]
    lines = [_row(head), "|" + "---|" * len(head)]
    for r in results:
        knn = r["knn"]
        cells = [r["point"], f"{temperature(r):g}", f"{relative_compute(r):.2f}",
                 f"{r['cost']['core_hours']:.2f}",
                 f"{r['final_loss']:.2f}", f"{knn.get('smooth_or_featured', math.nan):.2f}",
                 f"{knn.get('odd', math.nan):.2f}"]
        cells += [format_difference(find_comparison(r, m, n)) for n in COUNTS for m in ARMS]
        lines.append(_row(cells + _retrieval_ratios(r)))
    return _markdown(results, "Paired differences against `supervised` in points of mean "
                              "accuracy, 95% t-interval", lines)


def _retrieval_ratios(result: dict) -> list[str]:
    """p@10 of h over raw pixels for every rare kind, as table cells (``-`` where missing)."""
    p10 = result["retrieval_p10"]
    return [f"{p10['h (simclr)'][k] / p10['raw pixels'][k]:.2f}"
            if p10.get("raw pixels", {}).get(k) else "-" for k in RARE_KINDS]


def _row(cells) -> str:
    return "| " + " | ".join(cells) + " |"


def _markdown(results: list[dict], what: str, lines: list[str]) -> str:
    """A table with its caption: the populations, ``what`` the cells are, the p@10 ratio."""
    pops = sorted({tuple(r["populations"]) for r in results})
    return (f"Populations (simulator seeds): {pops}. {what}; p@10: h over raw pixels.\n\n"
            + "\n".join(lines))


def paired_to(result: dict, base: dict, method: str, labels: int) -> dict:
    """``method``'s score in ``result`` minus its score in ``base``, paired on the same
    labelled subsets (population, subset) at ``labels``, as
    :meth:`phys555_cl.study_results.ResultTable.compare` pairs two methods (fractions). Both
    results need their ``records``.

    Raises:
        ValueError: the two results share no labelled subset for this method and count.
    """
    a, b = (scores_by_subset(r["records"], method, labels) for r in (result, base))
    if not set(a) & set(b):
        raise ValueError(f"{result['point']} and {base['point']} share no {method} score at "
                         f"{labels} labels: were they run on the same populations?")
    return paired_between(a, b)


def mean_accuracy(result: dict, method: str, labels: int) -> float:
    """``method``'s mean accuracy (fraction) at ``labels`` in a point's result, NaN if absent."""
    return next((x["mean"] for x in result["rows"]
                 if x["method"] == method and x["labels"] == labels), math.nan)


def _change(result: dict, base: dict) -> str:
    """What a point changes in its base's recipe, e.g. ``temperature 0.1`` or ``augment
    flip_p=0.0``; ``(the base)`` when nothing."""
    cfg, ref = result["config"], base["config"]
    said = [f"{k} {cfg[k]}" for k in sorted(cfg) if k not in ("augment", "name")
            and cfg[k] != ref.get(k)]
    aug, ref_aug = cfg.get("augment") or {}, ref.get("augment") or {}
    steps = [f"{k}={aug[k]}" for k in sorted(aug) if aug[k] != ref_aug.get(k)]
    said += ["augment " + ", ".join(steps)] if steps else []
    return ", ".join(said) or "(the base)"


def ablation_table(results: list[dict], base: str, method: str = ARMS[0]) -> str:
    """The ablation as Markdown: one row per point, its change to ``base``, the kNN monitor,
    ``method``'s mean accuracy and its paired difference to ``base`` at each of
    :data:`COUNTS`, and the retrieval p@10 ratio (h over raw pixels) of every rare kind.

    Raises:
        ValueError: no result is named ``base``.
    """
    ref = next((r for r in results if r["point"] == base), None)
    if ref is None:
        raise ValueError(f"the ablation's base {base!r} is not among the results "
                         f"({', '.join(r['point'] for r in results)}): run it first")
    head = ["point", "change", "kNN smooth", "kNN odd"]
    for n in COUNTS:
        head += [f"{method.split(' + ')[-1]} @{n} (%)", f"vs base @{n}"]
    head += [f"p@10 {k} h/raw" for k in RARE_KINDS]
    lines = [_row(head), "|" + "---|" * len(head)]
    for r in [ref] + [r for r in results if r is not ref]:
        knn = r["knn"]
        cells = [r["point"], _change(r, ref), f"{knn.get('smooth_or_featured', math.nan):.3f}",
                 f"{knn.get('odd', math.nan):.3f}"]
        for n in COUNTS:
            cells += [f"{100 * mean_accuracy(r, method, n):.1f}",
                      "-" if r is ref else format_difference(paired_to(r, ref, method, n))]
        lines.append(_row(cells + _retrieval_ratios(r)))
    return _markdown(results, f"`{method}` accuracy (mean over tasks); each point minus "
                              f"`{base}` paired on the same labelled subsets, in points, 95% "
                              f"t-interval", lines)


def plot_scaling(results: list[dict], axes=None):
    """Payoff (paired difference against ``supervised``, with its 95% interval) against
    pretraining compute, one panel per label count, one line per arm and temperature (the
    most common temperature solid, others dashed with open markers); returns the figure."""
    from collections import Counter

    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    results = _in_order(results)
    temps = [t for t, _ in Counter(map(temperature, results)).most_common()]
    if axes is None:
        _, axes = plt.subplots(1, len(COUNTS), figsize=(5 * len(COUNTS), 3.6), sharey=True)
    for ax, n in zip(axes, COUNTS):
        drawn = 0
        xs = set()
        for i, (m, marker) in enumerate(zip(ARMS, "os")):
            for j, t in enumerate(temps):
                nudge = 1 + 0.03 * (2 * i - 1) * (1 + j)  # nudged apart, not hidden
                pts = [(relative_compute(r), find_comparison(r, m, n)) for r in results
                       if temperature(r) == t]
                pts = [(x, c) for x, c in pts if c is not None and _finite(c["low"])]
                drawn += len(pts)
                xs.update(x for x, _ in pts)
                y = [100 * c["difference"] for _, c in pts]
                err = [[100 * (c["difference"] - c["low"]) for _, c in pts],
                       [100 * (c["high"] - c["difference"]) for _, c in pts]]
                label = m if len(temps) == 1 else f"{m}, temperature {t:g}"
                ax.errorbar([nudge * x for x, _ in pts], y, yerr=err, capsize=3, label=label,
                            fmt=marker + ("-" if j == 0 else "--"), color=f"C{i}",
                            mfc=None if j == 0 else "white")
        ax.axhline(0, color="grey", lw=0.8)
        if drawn:
            ax.set_xscale("log")
            ax.set_xticks(sorted(xs))  # a tick at each point's compute
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        else:
            ax.text(0.5, 0.5, "no point with an interval yet", ha="center",
                    transform=ax.transAxes)
        ax.set_xlabel("pretraining compute (x the default recipe's)")
        ax.set_title(f"{n} labels per task")
    axes[0].set_ylabel("accuracy − supervised (points)")
    axes[0].legend(fontsize=8)
    fig = axes[0].figure
    fig.tight_layout()
    return fig
