"""The payoff study's results: every score, the table of means, paired 95% intervals, Markdown.

:func:`phys555_cl.study.label_efficiency` scores every method on every labelled subset; each
score is one *record*. Here they become what the study reports:

- a :class:`ResultTable`: one row per (protocol, label count, method), the mean accuracy over
  its records and their spread;
- paired comparisons (:meth:`ResultTable.compare`): two methods fitted on exactly the same
  labelled galaxies give one difference ``d_i`` per (population, subset), and
  :func:`paired_interval` gives their mean with a 95% Student-t interval;
- a :class:`Study` (:func:`phys555_cl.study.payoff_study`): the table, the comparisons and the
  one-shot retrieval table, printed as Markdown and written as JSON.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from phys555_cl.checkpoints import read_checkpoint
from phys555_cl.evaluate import TASKS

__all__ = [
    "LABEL_COUNTS",
    "METHODS",
    "SIMCLR_ARMS",
    "WEIGHT_FREE",
    "ResultTable",
    "Study",
    "architecture",
    "check_reuse",
    "lend_records",
    "format_comparisons",
    "json_values",
    "nan_values",
    "format_retrieval",
    "load_study",
    "mean_retrieval",
    "paired_between",
    "paired_interval",
    "scores_by_subset",
    "score",
]

#: Every method of the study, in table order.
METHODS = (
    "simclr + linear",
    "simclr + fine-tune",
    "simclr + fine-tune + distill",
    "supervised",
    "random init + linear",
    "raw pixels + linear",
)
#: The arms that use the SimCLR encoder; each is compared with ``supervised``.
SIMCLR_ARMS = METHODS[:3]
#: The methods that never see the SimCLR weights: their networks start from a seeded fresh
#: initialisation (or use none), so their records depend only on the populations, the labelled
#: subsets, the recipe and the architecture. A study of another checkpoint of the same
#: architecture can lend them, with its ``supervised`` retrieval row
#: (:func:`phys555_cl.study.payoff_study`'s ``reuse``; ``--reuse``).
WEIGHT_FREE = ("supervised", "random init + linear", "raw pixels + linear")
#: The recipe keys the weight-free arms depend on (the rest: fine-tuning and distillation).
SUPERVISED_RECIPE = ("steps", "batch_size", "supervised_lr", "weight_decay")
#: Labelled galaxies per task; ``"all"`` = every galaxy of the probe-training part allowed to
#: carry that label.
LABEL_COUNTS = (5, 20, 200, "all")


# ------------------------------------------------------------------------------------------
# statistics
# ------------------------------------------------------------------------------------------


def score(preds: dict, test_labels: dict, tasks, tiers=None) -> dict:
    """Accuracy per task (on the test galaxies the task applies to, label >= 0), their
    ``mean``, and with ``tiers`` the mean accuracy over tasks on each tier (``tier0``...).
    A task without predictions (no labelled example) scores NaN and is left out of the means.

    Shapes: ``preds[t] [M]`` (or ``None``), ``test_labels[t] [M]``, ``tiers [M]``.
    """
    out = {}
    for t in tasks:
        y = np.asarray(test_labels[t])
        ok = y >= 0
        defined = preds.get(t) is not None and ok.any()
        out[t] = float(np.mean(preds[t][ok] == y[ok])) if defined else math.nan
    out["mean"] = _nanmean([out[t] for t in tasks])
    if tiers is not None:
        tiers = np.asarray(tiers)
        for k in range(3):
            accs = []
            for t in tasks:
                y = np.asarray(test_labels[t])
                ok = (y >= 0) & (tiers == k)
                if preds.get(t) is not None and ok.any():
                    accs.append(float(np.mean(preds[t][ok] == y[ok])))
            out[f"tier{k}"] = _nanmean(accs)
    return out


def _nanmean(values) -> float:
    v = np.asarray([x for x in values if not math.isnan(x)], dtype=float)
    return float(v.mean()) if len(v) else math.nan


def paired_interval(differences) -> dict:
    """The mean of paired differences ``d_i`` and its 95% Student-t interval::

        mean = sum_i d_i / n,   sem = std(d, ddof=1) / sqrt(n),   ci95 = t(0.975, n - 1) sem

    Shapes: ``differences [n]`` -> ``{"difference": mean, "ci95", "low": mean - ci95,
    "high": mean + ci95, "sem", "wins": #(d_i > 0), "pairs": n}``. With one difference the
    interval is NaN; with none the mean is NaN too.
    """
    d = np.asarray(differences, dtype=float)
    n = len(d)
    sem = float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    half = _t975(n - 1) * sem if n > 1 else math.nan
    mean = float(d.mean()) if n else math.nan
    return {"difference": mean, "ci95": half, "low": mean - half, "high": mean + half,
            "sem": sem, "wins": int((d > 0).sum()), "pairs": n}


def scores_by_subset(records, method: str, labels, protocol: str = "random",
                     metric: str = "mean") -> dict:
    """``{(population, subset): metric}`` of ``method``'s records at ``labels`` and
    ``protocol``: the keys on which two sets of scores are paired."""
    return {(r["population"], r["subset"]): r[metric] for r in records
            if r["method"] == method and r["labels"] == labels and r["protocol"] == protocol}


def paired_between(a: dict, b: dict) -> dict:
    """:func:`paired_interval` of ``a[k] - b[k]`` over the keys both hold (NaN scores left
    out); ``a`` and ``b`` as made by :func:`scores_by_subset`."""
    return paired_interval([a[k] - b[k] for k in sorted(a) if k in b
                            and not math.isnan(a[k]) and not math.isnan(b[k])])


def _t975(dof: int) -> float:
    """The 97.5% quantile of Student's t with ``dof`` degrees of freedom."""
    # deferred on purpose: scipy.stats takes 1-2 s to import and only comparisons need it
    from scipy.stats import t

    return float(t.ppf(0.975, dof))


def mean_retrieval(tables: list[dict]) -> dict:
    """Average several populations' retrieval tables (precisions weighted by queries)."""
    out: dict = {}
    for name in tables[0]:
        out[name] = {}
        for kind in tables[0][name]:
            rows = [t[name][kind] for t in tables]
            q = sum(r["queries"] for r in rows)
            entry = {"queries": q}
            for key in rows[0]:
                if key == "queries":
                    continue
                entry[key] = (sum(r[key] * r["queries"] for r in rows if r["queries"]) / q
                              if q else math.nan)
            out[name][kind] = entry
    return out


# ------------------------------------------------------------------------------------------
# results
# ------------------------------------------------------------------------------------------


@dataclass(eq=False, repr=False)
class ResultTable:
    """Every score of a study (``records``) and the table of their means (``rows``).

    ``records``: one dict per (population, subset, method): ``protocol``, ``population``,
    ``labels``, ``subset``, ``method``, ``no_labels`` (tasks without a labelled example),
    ``n_labelled``, the accuracy of every task, ``mean`` (and ``tier0``-``tier2``).
    ``rows``: one per (protocol, label count, method), in :data:`METHODS` order: the means of
    its records, ``std`` (of ``mean`` between records), ``subsets``, ``no labelled example``.
    Iterating, ``len`` and ``table[i]`` go over the rows; ``print(table)`` is Markdown.

    A table from :func:`phys555_cl.study.label_efficiency` also holds ``notes`` (label counts
    skipped), ``seconds`` per method, ``models`` (the networks kept with ``keep_models``) and
    ``test_index`` (the population's test galaxies).
    """

    records: list = field(default_factory=list)
    tasks: tuple = tuple(TASKS)
    notes: list = field(default_factory=list)
    seconds: dict = field(default_factory=dict)
    models: dict = field(default_factory=dict)
    test_index: np.ndarray | None = None
    rows: list = field(init=False)

    def __post_init__(self):
        self.records, self.tasks = list(self.records), tuple(self.tasks)
        self.rows = _aggregate(self.records, self.tasks)

    @classmethod
    def concat(cls, tables) -> ResultTable:
        """One table of the records of ``tables`` (e.g. one per population), with their notes
        and their seconds added up."""
        tables = list(tables)
        seconds: Counter = Counter()
        for t in tables:
            seconds.update(t.seconds)
        return cls([r for t in tables for r in t.records], tables[0].tasks if tables else TASKS,
                   notes=[n for t in tables for n in t.notes], seconds=dict(seconds))

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]

    def compare(self, a: str, b: str, labels, protocol: str = "random",
                metric: str = "mean") -> dict:
        """Paired comparison of methods ``a`` and ``b`` at one label count.

        One difference ``a - b`` per (population, subset): both methods saw exactly the same
        labelled galaxies, so the luck of the draw cancels. Returns :func:`paired_interval`
        of the differences (accuracies as fractions; ``wins``: pairs where ``a`` scored higher).

        Raises:
            KeyError: no score of ``a`` or ``b`` at that label count and protocol.
        """
        sa, sb = (scores_by_subset(self.records, m, labels, protocol, metric) for m in (a, b))
        if not sa or not sb:
            known = sorted({(r["protocol"], str(r["labels"]), r["method"]) for r in self.records})
            raise KeyError(f"no scores for {a!r} or {b!r} at labels={labels!r}, "
                           f"protocol={protocol!r}; have {known}")
        return paired_between(sa, sb)

    def comparisons(self, metric: str = "mean") -> list[dict]:
        """Every SimCLR arm against ``supervised`` at every protocol and label count."""
        out = []
        keys = {(r["protocol"], r["labels"]) for r in self.records}
        counts = {c: i for i, c in enumerate(LABEL_COUNTS)}
        for protocol, count in sorted(keys, key=lambda k: (k[0], counts.get(k[1], 99))):
            have = {r["method"] for r in self.records
                    if r["protocol"] == protocol and r["labels"] == count}
            if "supervised" not in have:
                continue
            metrics = [metric] + (["tier0"] if protocol == "survey" and metric == "mean" else [])
            for arm in (m for m in SIMCLR_ARMS if m in have):
                for mt in metrics:
                    c = self.compare(arm, "supervised", count, protocol, mt)
                    out.append({"protocol": protocol, "labels": count, "method": arm,
                                "versus": "supervised", "metric": mt, **c})
        return out

    def __str__(self) -> str:
        if not self.rows:
            return "(empty table)"
        cols = list(self.rows[0])
        cells = [[_fmt(c, r.get(c, "")) for c in cols] for r in self.rows]
        return _markdown(cols, cells)

    __repr__ = __str__


def _aggregate(records: list, tasks: tuple) -> list[dict]:
    """The rows of a :class:`ResultTable`: the records grouped by (protocol, label count,
    method), in the order of :data:`LABEL_COUNTS` and :data:`METHODS`."""
    groups: dict = {}
    for r in records:
        groups.setdefault((r["protocol"], r["labels"], r["method"]), []).append(r)
    order = {m: i for i, m in enumerate(METHODS)}
    counts = {c: i for i, c in enumerate(LABEL_COUNTS)}
    rows = []
    for (protocol, count, method), rs in sorted(
        groups.items(),
        key=lambda kv: (kv[0][0], counts.get(kv[0][1], 99), order.get(kv[0][2], 99))):
        row = {"protocol": protocol, "labels": count, "method": method}
        metrics = [k for k in rs[0] if k in tasks or k == "mean" or k.startswith("tier")]
        for k in metrics:
            row[k] = _nanmean([x[k] for x in rs])
        means = [x["mean"] for x in rs if not math.isnan(x["mean"])]
        row["std"] = float(np.std(means, ddof=1)) if len(means) > 1 else 0.0
        row["subsets"] = len(rs)
        missing = {t: sum(t in x["no_labels"] for x in rs) for t in tasks}
        row["no labelled example"] = ", ".join(
            f"{t} {k}/{len(rs)}" for t, k in missing.items() if k) or "-"
        rows.append(row)
    return rows


@dataclass(eq=False, repr=False)
class Study:
    """The result of :func:`phys555_cl.study.payoff_study`: ``table`` (:class:`ResultTable`
    over every population), ``comparisons`` (every SimCLR arm against ``supervised``),
    ``retrieval`` (averaged over populations), ``notes``, ``seconds`` per method and in total,
    and the ``settings`` it ran with. ``print(study)`` shows all of it as Markdown."""

    table: ResultTable
    retrieval: dict
    notes: list
    seconds: dict
    settings: dict
    comparisons: list = field(init=False)

    def __post_init__(self):
        self.comparisons = self.table.comparisons() if self.table.records else []

    def to_json(self) -> dict:
        """Everything as plain JSON values (NaN as ``None``)."""
        return json_values({"settings": self.settings, "rows": list(self.table),
                       "comparisons": self.comparisons, "retrieval": self.retrieval,
                       "notes": self.notes, "seconds": self.seconds,
                       "records": self.table.records})

    def __str__(self) -> str:
        parts = [str(self.table)]
        if self.comparisons:
            parts.append("Paired differences, one per (population, subset); 95% t-interval "
                         "over the pairs; points of mean accuracy:\n\n"
                         + format_comparisons(self.comparisons))
        if self.retrieval:
            parts.append("One-shot retrieval, precision@10 (%; every galaxy of the kind in "
                         "turn is the query, cosine similarity, test galaxies of every "
                         "population):\n\n" + format_retrieval(self.retrieval, 10))
            parts.append("precision@50:\n\n" + format_retrieval(self.retrieval, 50))
        parts += [f"note: {n}" for n in self.notes]
        return "\n\n".join(parts)

    __repr__ = __str__


def json_values(v):
    """``v`` with NaN as ``None``, numpy numbers as Python ones, tuples as lists, keys as str."""
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, dict):
        return {str(k): json_values(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_values(x) for x in v]
    if isinstance(v, (np.integer, np.floating)):
        return v.item()
    return v


def nan_values(v):
    """Undo :func:`json_values` for numbers: ``None`` back to NaN, inside dicts and lists."""
    if v is None:
        return math.nan
    if isinstance(v, dict):
        return {k: nan_values(x) for k, x in v.items()}
    if isinstance(v, list):
        return [nan_values(x) for x in v]
    return v


def load_study(path) -> Study:
    """A :class:`Study` from the JSON file that ``python -m phys555_cl.study ... --json PATH``
    wrote: its records (and so its table and paired comparisons), retrieval, notes, seconds
    and settings, as the run printed them.

    Raises:
        OSError: the file cannot be read.
        ValueError: it is not a study's JSON (the message names the missing parts).
    """
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    missing = [k for k in ("records", "retrieval", "notes", "seconds", "settings")
               if k not in data]
    if missing:
        raise ValueError(f"{path} is not a study written by python -m phys555_cl.study "
                         f"--json: it has no {', '.join(missing)}")
    records = []
    for r in data["records"]:
        r = {k: (v if k in ("no_labels", "n_labelled") else nan_values(v)) for k, v in r.items()}
        records.append(r)
    settings = dict(data["settings"])
    checkpoint = data.get("checkpoint")
    if isinstance(checkpoint, str):  # where the study's model is: next to the file, if moved
        beside = os.path.join(os.path.dirname(os.path.abspath(path)), os.path.basename(checkpoint))
        settings.setdefault("checkpoint", checkpoint if os.path.exists(checkpoint)
                            or not os.path.exists(beside) else beside)
    return Study(ResultTable(records), nan_values(data["retrieval"]), data["notes"],
                 data["seconds"], settings)


# ------------------------------------------------------------------------------------------
# borrowing the arms that never see the SimCLR weights from another study
# ------------------------------------------------------------------------------------------


def architecture(config: dict) -> dict:
    """What the ``supervised`` and ``random init`` networks are built from in a config: the
    encoder, its width and the image size."""
    return {k: config.get(k) for k in ("encoder", "width", "image_size")}


def check_reuse(reuse: Study, settings: dict, lent: tuple, retrieval: bool) -> None:
    """Refuse to borrow records (:data:`WEIGHT_FREE`, ``lent``) from a study ``reuse`` that did
    not measure the same thing as the one about to run (``settings``, as
    :func:`phys555_cl.study.payoff_study` records them).

    Raises:
        ValueError: naming every setting that differs, or saying that nothing can be borrowed.
    """
    if not lent:
        raise ValueError(f"reuse: none of the methods asked ({', '.join(settings['methods'])}) "
                         f"can be borrowed; only {', '.join(WEIGHT_FREE)} can. Leave reuse out")
    if len(lent) == len(settings["methods"]):
        raise ValueError(f"reuse: every method asked ({', '.join(lent)}) would be copied from "
                         f"the other study, so there is nothing to run; ask for a SimCLR arm "
                         f"too, or read that study itself (load_study)")
    theirs = dict(reuse.settings)
    if "architecture" not in theirs and theirs.get("checkpoint"):
        # a study written before settings recorded the architecture: its checkpoint says it
        try:
            theirs["architecture"] = architecture(read_checkpoint(theirs["checkpoint"])["config"])
        except (OSError, ValueError, KeyError):
            pass
    keys = ("eval_seeds", "n_galaxies", "protocol", "image_size", "architecture")
    differ = [f"{k} (this study: {settings[k]}, the one to reuse: {theirs.get(k, 'not recorded')})"
              for k in keys if theirs.get(k) != settings[k]]
    # the recipe of the supervised network only: fine-tuning and distillation lend nothing
    mine, other = settings["recipe"], theirs.get("recipe") or {}
    differ += [f"recipe['{k}'] (this study: {mine[k]}, the one to reuse: "
               f"{other.get(k, 'not recorded')})" for k in SUPERVISED_RECIPE
               if other.get(k) != mine[k]]
    differ += [f"subsets of {c} labels (this study: {n}, the one to reuse: "
               f"{theirs.get('subsets', {}).get(c, 'none')})"
               for c, n in settings["subsets"].items() if theirs.get("subsets", {}).get(c) != n]
    missing = [m for m in lent if m not in theirs.get("methods", ())]
    if missing:
        differ.append(f"methods {missing} (not in the study to reuse)")
    if retrieval and "supervised" in lent and "all" in settings["label_counts"] \
            and "supervised" not in reuse.retrieval:
        differ.append("its retrieval table has no supervised row (run with --no-retrieval, "
                      "or reuse a study that has one)")
    if differ:
        raise ValueError("cannot reuse that study's records, its settings differ: "
                         + "; ".join(differ) + ". Run with the same settings, or without reuse")


def lend_records(table: ResultTable, reuse: Study, lent, seeds, counts,
                       methods) -> ResultTable:
    """``table`` with the ``lent`` methods' records of ``reuse`` added, in the order a study
    that ran every method itself would have written them."""
    want = {(s, c) for s in seeds for c in counts}
    records = table.records + [r for r in reuse.table.records
                               if r["method"] in lent and (r["population"], r["labels"]) in want]
    order = {"population": {s: i for i, s in enumerate(seeds)},
             "labels": {c: i for i, c in enumerate(counts)},
             "method": {m: i for i, m in enumerate(methods)}}
    records.sort(key=lambda r: (order["population"][r["population"]],
                                order["labels"][r["labels"]], r["subset"],
                                order["method"][r["method"]]))
    return ResultTable(records, table.tasks, notes=table.notes, seconds=table.seconds,
                       models=table.models, test_index=table.test_index)


# ------------------------------------------------------------------------------------------
# Markdown
# ------------------------------------------------------------------------------------------


def format_comparisons(comparisons: list[dict]) -> str:
    """The paired comparisons as Markdown (differences in points, 95% t-intervals)."""
    cols = ["protocol", "labels", "method", "scored on", "minus supervised", "95% interval",
            "ahead on"]
    cells = []
    for c in comparisons:
        where = "all tiers" if c["metric"] == "mean" else c["metric"].replace("tier", "tier ")
        cells.append([c["protocol"], str(c["labels"]), c["method"], where,
                      f"{100 * c['difference']:+.1f}",
                      f"[{100 * c['low']:+.1f}, {100 * c['high']:+.1f}]"
                      if not math.isnan(c["ci95"]) else "n/a",
                      f"{c['wins']} of {c['pairs']}"])
    return _markdown(cols, cells)


def format_retrieval(table: dict, k: int = 10) -> str:
    """Markdown: one row per rare kind, precision@k of every feature set and chance."""
    names = list(table)
    kinds = list(table[names[0]])
    cols = ["kind", "queries", "chance", *(f"{n} p@{k}" for n in names)]
    cells = []
    for kind in kinds:
        first = table[names[0]][kind]
        cells.append([kind, str(first["queries"]), _fmt("", first["chance"]),
                      *(_fmt("", table[n][kind][f"p@{k}"]) for n in names)])
    return _markdown(cols, cells)


def _fmt(col, v) -> str:
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else f"{100 * v:.1f}"
    return str(v)


def _markdown(cols, cells) -> str:
    widths = [max(len(c), *(len(row[j]) for row in cells)) for j, c in enumerate(cols)]
    line = "| " + " | ".join(c.ljust(w) for c, w in zip(cols, widths)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(v.ljust(w) for v, w in zip(row, widths)) + " |" for row in cells]
    return "\n".join([line, rule, *body])
