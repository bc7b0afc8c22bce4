"""Specification of phys555_cl.study: every arm on the same labels, protocols, pairs, retrieval."""

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from phys555_cl.checkpoints import CHECKPOINT_FORMAT, save_checkpoint
from phys555_cl.label_subsets import draw_subset, label_pools, subsets_for
from phys555_cl.study import METHODS, ResultTable, label_efficiency, main, payoff_study

TINY = dict(encoder="compact", width=4, hidden_dim=16, proj_dim=8, image_size=16)
QUICK = dict(steps=3, batch_size=16)


def _benchmark(name: str):
    """A script of benchmarks/ as a module."""
    path = Path(__file__).parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tiny_checkpoint(folder, model) -> str:
    """``model`` (of the TINY config) saved as a checkpoint in ``folder``; its path."""
    ckpt = folder / "tiny.pt"
    save_checkpoint(str(ckpt), {"format": CHECKPOINT_FORMAT, "config": {**TINY, "name": "tiny"},
                                "model": model.state_dict(), "epoch": 1})
    return str(ckpt)


def test_every_method_is_fitted_on_the_same_subsets_and_scored(galaxies, tiny_model):
    images, labels = galaxies
    table = label_efficiency(tiny_model(), images, labels, TINY, label_counts=(10, "all"),
                             repeats=2, recipe=QUICK, progress=False)
    assert isinstance(table, ResultTable)
    rows = {(r["labels"], r["method"]): r for r in table}
    for count in (10, "all"):
        for m in METHODS:
            assert (count, m) in rows
    assert rows[(10, "supervised")]["subsets"] == 2 and rows[("all", "supervised")]["subsets"] == 1
    for r in table.records:
        assert r["n_labelled"]["smooth_or_featured"] == (10 if r["labels"] == 10 else 80)
        assert 0 <= r["mean"] <= 1
    assert str(table).splitlines()[0].startswith("| protocol | labels | method")


def test_compare_is_a_paired_t_interval_over_population_subset_pairs(galaxies, tiny_model):
    images, labels = galaxies
    tables = [label_efficiency(tiny_model(), images, labels, TINY, label_counts=(10,), repeats=2,
                               methods=("simclr + linear", "raw pixels + linear"),
                               population=p, progress=False) for p in (1, 2)]
    table = ResultTable.concat(tables)
    a = {(r["population"], r["subset"]): r["mean"] for r in table.records
         if r["method"] == "simclr + linear"}
    b = {(r["population"], r["subset"]): r["mean"] for r in table.records
         if r["method"] == "raw pixels + linear"}
    d = np.array([a[k] - b[k] for k in sorted(a)])
    c = table.compare("simclr + linear", "raw pixels + linear", 10)
    assert c["pairs"] == 4
    assert c["difference"] == pytest.approx(d.mean())
    # t(0.975, 3 dof) = 3.182
    assert c["ci95"] == pytest.approx(3.1824 * d.std(ddof=1) / 2, rel=1e-3)
    assert c["low"] < c["difference"] < c["high"]
    with pytest.raises(KeyError, match="no scores"):
        table.compare("simclr + linear", "no such method", 10)


def test_different_populations_draw_different_subsets_and_splits(galaxies, tiny_model):
    images, labels = galaxies
    kw = dict(label_counts=(10,), repeats=1, methods=("simclr + linear",), progress=False)
    t1 = label_efficiency(tiny_model(), images, labels, TINY, population=1, **kw)
    t2 = label_efficiency(tiny_model(), images, labels, TINY, population=2, **kw)
    assert not np.array_equal(t1.test_index, t2.test_index)


def test_a_task_with_no_labelled_example_is_reported_not_dropped(galaxies, tiny_model):
    images, labels = galaxies
    labels = dict(labels)
    odd = labels["odd_feature"].clone()
    keep = torch.nonzero(odd >= 0).flatten()[:1]  # a single odd galaxy in the whole sample
    labels["odd_feature"] = torch.full_like(odd, -1)
    labels["odd_feature"][keep] = odd[keep]
    table = label_efficiency(tiny_model(), images, labels, TINY, label_counts=(5,), repeats=3,
                             methods=("simclr + linear", "supervised"), recipe=QUICK,
                             progress=False)
    row = next(r for r in table if r["method"] == "simclr + linear")
    assert "odd_feature" in row["no labelled example"]
    assert any(math.isnan(r["odd_feature"]) for r in table.records)
    # the mean is over the tasks that could be scored, not NaN
    assert all(not math.isnan(r["mean"]) for r in table.records)


def test_survey_protocol_labels_only_the_tiers_a_survey_has(galaxies):
    _, labels = galaxies
    pools = label_pools(labels, ["smooth_or_featured", "redshift_high"], "survey")
    tier = labels["label_tier"].numpy()
    assert (tier[pools["smooth_or_featured"]] == 2).all()
    assert (tier[pools["redshift_high"]] >= 1).all()
    assert len(pools["redshift_high"]) > len(pools["smooth_or_featured"])
    sub = draw_subset(pools, 4, np.random.default_rng(0), shared=False)
    assert set(sub["smooth_or_featured"]) <= set(pools["smooth_or_featured"])
    assert len(sub["redshift_high"]) == 4
    random_pools = label_pools(labels, ["smooth_or_featured", "redshift_high"], "random")
    shared = draw_subset(random_pools, 7, np.random.default_rng(0), shared=True)
    assert np.array_equal(shared["smooth_or_featured"], shared["redshift_high"])


def test_survey_protocol_scores_every_tier_and_skips_counts_beyond_the_pool(galaxies, tiny_model):
    images, labels = galaxies
    table = label_efficiency(tiny_model(), images, labels, TINY, protocol="survey",
                             label_counts=(3, 10_000, "all"), repeats=1,
                             methods=("simclr + linear", "raw pixels + linear"), progress=False)
    assert {r["labels"] for r in table} == {3, "all"}
    assert any("10000 labels asked" in n for n in table.notes)
    for r in table:
        assert {"tier0", "tier1", "tier2"} <= set(r)


def test_bad_arguments_are_refused_with_what_to_do(galaxies, tiny_model):
    images, labels = galaxies
    model = tiny_model()
    with pytest.raises(ValueError, match="label count"):
        label_efficiency(model, images, labels, TINY, label_counts=(0.1,))
    with pytest.raises(ValueError, match="unknown method"):
        label_efficiency(model, images, labels, TINY, methods=("simclr",))
    with pytest.raises(ValueError, match="no labels for task"):
        label_efficiency(model, images, labels, TINY, tasks=("colour",))
    with pytest.raises(ValueError, match="protocol"):
        label_efficiency(model, images, labels, TINY, protocol="tiers")
    with pytest.raises(ValueError, match="recipe"):
        label_efficiency(model, images, labels, TINY, recipe={"stpes": 3})
    with pytest.raises(ValueError, match="distill_unlabelled"):
        label_efficiency(model, images, labels, TINY, recipe={"distill_unlabelled": 0})
    with pytest.raises(ValueError, match="distill_steps"):
        label_efficiency(model, images, labels, TINY, recipe={"distill_steps": 2.5})


def test_payoff_study_pools_populations_and_adds_retrieval(tiny_model):
    study = payoff_study(tiny_model(), TINY, eval_seeds=(3, 4), n_galaxies=128,
                         label_counts=(10, "all"), repeats=2, recipe=QUICK, progress=False,
                         methods=("simclr + linear", "simclr + fine-tune", "supervised",
                                  "raw pixels + linear"))
    row = next(r for r in study.table if r["labels"] == 10 and r["method"] == "supervised")
    assert row["subsets"] == 4  # 2 populations x 2 subsets
    arms = {(c["labels"], c["method"]) for c in study.comparisons}
    assert arms == {(10, "simclr + linear"), (10, "simclr + fine-tune"),
                    ("all", "simclr + linear"), ("all", "simclr + fine-tune")}
    assert set(study.retrieval) == {"h (simclr)", "raw pixels", "random init", "supervised"}
    ring = study.retrieval["h (simclr)"]["ring"]
    assert ring["queries"] > 0 and 0 <= ring["p@10"] <= 1
    text = json.dumps(study.to_json())
    assert "NaN" not in text and "comparisons" in text
    assert "One-shot retrieval" in str(study)


def test_study_cli_writes_the_json_of_rows_comparisons_and_retrieval(tmp_path, capsys, tiny_model):
    ckpt = _tiny_checkpoint(tmp_path, tiny_model())
    out = tmp_path / "study.json"
    rc = main([ckpt, "--eval-seeds", "7", "--n-galaxies", "128", "--labels", "8", "all",
               "--repeats", "2", "--steps", "2", "--json", str(out)])
    assert rc == 0
    data = json.loads(out.read_text())
    assert {"rows", "comparisons", "retrieval", "settings", "records"} <= set(data)
    # every single score behind the rows: 2 subsets of 8 labels + 1 of all, every method
    assert len(data["records"]) == 3 * len(METHODS)
    assert {(r["labels"], r["method"]) for r in data["rows"]} >= {(8, m) for m in METHODS}
    assert any(c["method"] == "simclr + fine-tune + distill" for c in data["comparisons"])
    assert "minus supervised" in capsys.readouterr().out


def test_each_label_count_gets_its_own_number_of_subsets(galaxies, tiny_model):
    assert [subsets_for(c) for c in (5, 20, 200, 50, "all")] == [5, 5, 2, 3, 1]
    assert [subsets_for(c, 4) for c in (5, "all")] == [4, 1]
    images, labels = galaxies
    table = label_efficiency(tiny_model(), images, labels, TINY, label_counts=(6, 10),
                             repeats={6: 1, 10: 2}, methods=("raw pixels + linear",),
                             progress=False)
    assert sorted((r["labels"], r["subset"]) for r in table.records) == [(6, 0), (10, 0), (10, 1)]
    with pytest.raises(ValueError, match=r"repeats\[10\] must be a positive integer"):
        label_efficiency(tiny_model(), images, labels, TINY, label_counts=(10,),
                         repeats={10: 0}, progress=False)


@pytest.mark.parametrize("args, message", [
    (["--repeats", "0"], "--repeats must be a positive integer, got 0"),
    (["--steps", "0"], "--steps must be a positive integer, got 0"),
    (["--labels", "0"], "label count must be a whole number >= 1 or 'all', got 0"),
    (["--labels", "ten"], "not a label count"),
    (["--methods", "simclr"], "unknown method"),
    (["--protocol", "tiers"], "invalid choice"),
    (["--n-galaxies", "5"], "--n-galaxies must be an integer >= 20, got 5"),
    (["--n-galaxies", "100"], "needs --n-galaxies of at least 120"),
    (["--eval-seeds", "-1"], "--eval-seeds must be a non-negative integer, got -1"),
    (["--json", "/no/such/folder/out.json"], "existing folder"),
    (["--reuse", "/no/such/study.json"], "--reuse '/no/such/study.json': no such file"),
])
def test_study_cli_refuses_bad_arguments_before_any_work(args, message, capsys):
    with pytest.raises(SystemExit) as exit:
        main(["no_such_checkpoint.pt", *args])
    err = capsys.readouterr().err
    assert exit.value.code == 2 and message in err and "Traceback" not in err


def test_study_cli_missing_checkpoint_is_one_line(capsys):
    assert main(["no_such_checkpoint.pt"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no checkpoint at") and len(err.splitlines()) == 1


def _other_model(tiny_model):
    """The tiny model with different weights: what a second checkpoint would be."""
    model = tiny_model()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def test_reuse_lends_the_weight_free_arms_number_for_number(tiny_model, tmp_path):
    """A study that borrows supervised, random init and raw pixels from a study of another
    checkpoint gives exactly the records, rows and retrieval of one that trains them itself."""
    kw = dict(eval_seeds=(3, 4), n_galaxies=128, label_counts=(8, "all"), repeats=2,
              recipe=QUICK, progress=False)
    first = payoff_study(tiny_model(), TINY, **kw)
    path = tmp_path / "first.json"
    path.write_text(json.dumps(first.to_json()))
    second = _other_model(tiny_model)
    full = payoff_study(second, TINY, **kw)
    torch.manual_seed(123)  # the global RNG state must not matter either
    lent = payoff_study(second, TINY, reuse=path, **kw)
    assert lent.settings["reused"] == {"methods": ["supervised", "random init + linear",
                                                   "raw pixels + linear"], "from": str(path)}
    assert json.dumps(lent.table.records) == json.dumps(full.table.records)
    assert json.dumps(lent.comparisons) == json.dumps(full.comparisons)
    assert lent.retrieval == full.retrieval
    # and the borrowed arms were not trained: their seconds are zero
    assert lent.seconds["supervised"] == 0.0 < full.seconds["supervised"]


def test_reuse_refuses_a_study_of_other_settings_or_architecture(tiny_model):
    kw = dict(eval_seeds=(3,), n_galaxies=128, label_counts=(8,), repeats=1, recipe=QUICK,
              progress=False, retrieval=False)
    first = payoff_study(tiny_model(), TINY, **kw)
    with pytest.raises(ValueError, match="eval_seeds"):
        payoff_study(tiny_model(), TINY, **{**kw, "eval_seeds": (4,)}, reuse=first)
    with pytest.raises(ValueError, match="recipe"):
        payoff_study(tiny_model(), TINY, **{**kw, "recipe": {**QUICK, "steps": 4}}, reuse=first)
    # fine-tuning's and distillation's recipe is not the supervised network's: reuse is fine
    other = {**QUICK, "finetune_lr": 1e-3, "distill_unlabelled": 4, "distill_steps": 2}
    lent = payoff_study(tiny_model(), TINY, **{**kw, "recipe": other}, reuse=first)
    assert ([r for r in lent.table.records if r["method"] == "supervised"]
            == [r for r in first.table.records if r["method"] == "supervised"])
    wider = {**TINY, "width": 8}
    from phys555_cl.encoders import build_model_from_config
    with pytest.raises(ValueError, match="architecture"):
        payoff_study(build_model_from_config(wider), wider, **kw, reuse=first)
    with pytest.raises(ValueError, match="can be borrowed"):
        payoff_study(tiny_model(), TINY, **kw, methods=("simclr + linear",), reuse=first)
    with pytest.raises(ValueError, match="nothing to run"):
        payoff_study(tiny_model(), TINY, **kw, methods=("supervised",), reuse=first)


def test_populations_in_worker_processes_give_the_records_of_one_process(tiny_model):
    """``workers=2`` computes the two populations side by side: the same records, rows,
    comparisons and retrieval as one process (on one thread each, so no rounding differs)."""
    kw = dict(eval_seeds=(3, 4), n_galaxies=128, label_counts=(8, "all"), repeats=2,
              recipe=QUICK, progress=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        alone = payoff_study(tiny_model(), TINY, workers=1, **kw)
    finally:
        torch.set_num_threads(threads)
    side_by_side = payoff_study(tiny_model(), TINY, workers=2, **kw)
    assert json.dumps(side_by_side.table.records) == json.dumps(alone.table.records)
    assert json.dumps(side_by_side.comparisons) == json.dumps(alone.comparisons)
    assert side_by_side.retrieval == alone.retrieval
    assert set(side_by_side.seconds) == set(alone.seconds)


def test_study_cli_refuses_zero_workers(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["no_such_checkpoint.pt", "--workers", "0"])
    assert exit.value.code == 2 and "--workers must be 1 or more, got 0" in capsys.readouterr().err


def test_bench_study_times_every_way_on_the_same_records(tmp_path, capsys, tiny_model):
    """benchmarks/bench_study.py runs the study before and after its speed-ups and counts the
    records each way reproduces (here one population, so one process)."""
    bench = _benchmark("bench_study")
    ckpt = _tiny_checkpoint(tmp_path, tiny_model())
    assert bench.main(["--checkpoint", ckpt, "--seeds", "7", "--steps", "1",
                       "--n-galaxies", "120"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| before")
            or line.startswith("| channels-last")]
    assert len(rows) == 3 and "| 1.00x |" in rows[0]
    # --compare pairs two studies' records: a copy of a study with one score moved by a
    # point differs from it in that record only
    original = Path(__file__).parents[1] / "data" / "pretrained" / "study_reference_random.json"
    data = json.loads(original.read_text())
    moved = next(r for r in data["records"] if r["method"] == "simclr + fine-tune"
                 and r["labels"] == 20 and r["subset"] == 0)
    moved["mean"] += 0.01
    copy = tmp_path / "moved.json"
    copy.write_text(json.dumps(data))
    text = bench.compare(str(copy), str(original))
    assert "| simclr + fine-tune | 20 | 19 of 20 | +0.1 [-0.1, +0.2] |" in text
    assert "| supervised | 20 | 20 of 20 | +0.0 [+0.0, +0.0] |" in text


def test_choose_distill_budget_pairs_each_budget_with_the_first(tmp_path, tiny_model):
    """benchmarks/choose_distill_budget.py: one teacher per subset, one student per budget;
    the report pairs each budget with the first subset by subset, and evaluation seeds are
    refused."""
    bench = _benchmark("choose_distill_budget")
    ckpt = _tiny_checkpoint(tmp_path, tiny_model())
    budgets = ((2, 4), (1, 8))
    rows = bench.population_job(ckpt, 7, {5: 2}, budgets, 160, recipe={**bench.RECIPE,
                                                                             **QUICK})
    assert len(rows) == 2 * len(budgets) and {r["budget"] for r in rows} == set(budgets)
    assert len(bench.report(rows, budgets, [5]).splitlines()) == 2 + len(budgets)
    # the differences are paired subset by subset: +2 and +3 points -> +2.5
    made = [{"population": 1, "labels": 20, "subset": k, "budget": b, "mean": m, "seconds": 1.0}
            for b, means in (((300, 64), (0.50, 0.60)), ((150, 16), (0.52, 0.63)))
            for k, m in enumerate(means)]
    lines = bench.report(made, ((300, 64), (150, 16)), [20]).splitlines()
    assert lines[2] == "| 300 x 64 | 55.0 / - | 2 |"
    assert lines[3].startswith("| 150 x 16 | 57.5 / +2.5 [") and lines[3].endswith("| 2 |")
    with pytest.raises(SystemExit, match="evaluation seeds"):
        bench.main(["--seeds", "2021", "--checkpoint", ckpt])
