"""TuneResult from a synthetic table: the best trial, the code snippet, persistence."""

from __future__ import annotations

import dataclasses
import math
import os

import pytest
import torch
from sklearn.datasets import load_digits

import autolr
from autolr import AutoLRError, TrialConfig, TrialRecord, TuneResult, schedules


def record(number, state, lr, values, **config):
    params = TrialConfig(lr=lr, **config).to_dict()
    return TrialRecord(number=number, state=state, params=params, values=tuple(values),
                       epochs_run=len(values), steps_run=10 * len(values))


TABLE = [
    record(0, "complete", 1e-3, [0.9, 0.5]),
    record(1, "complete", 3e-3, [0.8, 0.3], schedule="cosine", warmup_fraction=0.1,
           batch_size=64),
    record(2, "diverged", 1.0, [0.7, 0.01]),  # a great-looking value before it blew up
    record(3, "pruned", 1e-2, [0.2]),  # pruned trials never count as best either
    record(4, "complete", 1e-4, [float("nan")]),
]


def test_the_best_is_the_best_finished_trial_never_a_diverged_or_pruned_one():
    result = TuneResult(TABLE)
    assert result.best_record.number == 1
    assert result.best_value == 0.3
    assert result.best_config["schedule"] == "cosine"
    maximize = TuneResult(TABLE, direction="maximize")
    assert maximize.best_record.number == 0
    assert result.counts() == {"complete": 3, "pruned": 1, "diverged": 1, "failed": 0}


def test_best_config_is_a_copy_whose_edits_change_nothing_in_the_result():
    result = TuneResult([record(0, "complete", 1e-3, [0.5], schedule="step",
                                schedule_params={"gamma": 0.1})])
    edited = result.best_config
    edited["schedule_params"]["gamma"] = 0.9
    edited["lr"] = 1.0
    assert result.best_config["schedule_params"]["gamma"] == 0.1
    assert result.best_config["lr"] == 1e-3


def _snippet_and_autolr_lrs(result: TuneResult, **given):
    """The learning rate at every step from the exec'd snippet and from autolr's own
    scheduler at the snippet's steps per epoch and epochs, stepping one past the end."""
    model = torch.nn.Linear(3, 1)
    namespace = {"model": model, **given}
    exec(result.code(), namespace)  # noqa: S102 - our own generated snippet
    snippet_opt, snippet_sched = namespace["optimizer"], namespace["scheduler"]
    steps_per_epoch, epochs = namespace["steps_per_epoch"], namespace["epochs"]
    optimizer = result.make_optimizer(model)
    scheduler = result.make_scheduler(optimizer, steps_per_epoch, epochs)
    assert type(snippet_opt) is type(optimizer)
    theirs, ours = [], []
    for _ in range(steps_per_epoch * epochs + 1):
        theirs.append(snippet_opt.param_groups[0]["lr"])
        ours.append(optimizer.param_groups[0]["lr"])
        snippet_opt.step(), snippet_sched.step(), optimizer.step(), scheduler.step()
    return theirs, ours


def test_the_code_snippet_runs_and_reproduces_make_scheduler():
    # the sweep's epochs known: the snippet says them and its steps per epoch (10 here)
    result = TuneResult(TABLE, epochs=3)
    assert "steps_per_epoch, epochs = 10, 3  # as in this sweep" in result.code()
    theirs, ours = _snippet_and_autolr_lrs(result)
    assert theirs == pytest.approx(ours) and len(ours) == 31
    config = TrialConfig.from_dict(result.best_config)
    assert ours[-2] == pytest.approx(
        config.lr * schedules.multipliers("cosine", 30, warmup_steps=3)[-1])
    # not known (hand-made records): the user's loader, whose len() is steps per epoch
    theirs, ours = _snippet_and_autolr_lrs(TuneResult(TABLE), train_loader=range(7))
    assert theirs == pytest.approx(ours) and len(ours) == 7 * 20 + 1


@pytest.mark.parametrize("name", schedules.BUILTIN)
def test_every_built_in_schedule_is_written_out_in_plain_torch(name):
    # a user pastes the lines into a project without autolr: they must not import it
    params = {key: dim.low if hasattr(dim, "low") else dim.choices[-1]
              for key, dim in schedules.get(name).params.items()}
    best = record(0, "complete", 0.05, [0.1], schedule=name, schedule_params=params,
                  warmup_fraction=0.1, optimizer="sgd")
    result = TuneResult([best], epochs=4)
    assert "autolr" not in result.code()
    theirs, ours = _snippet_and_autolr_lrs(result)
    assert theirs == pytest.approx(ours, rel=1e-12)


def test_a_users_schedule_is_named_through_autolr_in_the_snippet(monkeypatch):
    monkeypatch.setattr(schedules, "_REGISTRY", dict(schedules._REGISTRY))  # test's own
    schedules.register("halve_late", lambda step, total_steps: 0.5 ** (step > total_steps // 2))
    result = TuneResult([record(0, "complete", 0.05, [0.1], schedule="halve_late")])
    assert "from autolr import schedules" in result.code()
    theirs, ours = _snippet_and_autolr_lrs(result, train_loader=range(5))
    assert theirs == pytest.approx(ours) and ours[-2] == pytest.approx(0.025)


def test_no_finished_trial_means_no_best_and_a_plain_message():
    result = TuneResult([TABLE[2], TABLE[3]])
    assert result.best_record is None
    with pytest.raises(AutoLRError, match="no trial completed"):
        result.make_optimizer(torch.nn.Linear(1, 1))
    assert "1 diverged, 1 pruned" in result.summary()


def test_trials_table_and_json_round_trip(tmp_path):
    result = TuneResult(TABLE, metric="accuracy", direction="maximize", epochs=2,
                        study_name="s")
    table = result.trials
    assert list(table.index) == [0, 1, 2, 3, 4]
    assert table.loc[1, "schedule"] == "cosine" and table.loc[1, "final_value"] == 0.3
    assert table.loc[2, "state"] == "diverged"
    picked = TuneResult([dataclasses.replace(TABLE[1], seed_values=(0.3, 0.32),
                                             holdout_values=(0.36,))], metric="accuracy",
                        direction="maximize")
    row = picked.trials.loc[1]  # the seeds' mean beside the held-out one the user is told
    assert row["final_value"] == pytest.approx(0.31)
    assert row["expected_value"] == pytest.approx(0.36) == picked.best_value
    loaded = TuneResult.load(result.save(tmp_path / "r.json"))
    assert loaded.metric == "accuracy" and loaded.direction == "maximize"
    assert [r.values for r in loaded.records[:4]] == [r.values for r in result.records[:4]]
    assert math.isnan(loaded.records[4].values[0])


def test_a_report_never_replaces_the_storage_it_was_read_from(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    digits = load_digits(return_X_y=True)
    autolr.tune(torch.nn.Linear(64, 10), (digits[0] / 16, digits[1]), n_trials=2, epochs=1,
                storage="sqlite:///sweep.db", progress=False, confirm_seeds=0,
                range_test=False)
    stored = (tmp_path / "sweep.db").read_bytes()
    result = autolr.load("sqlite:///sweep.db")
    for write in (result.report, result.save,
                  lambda path: autolr.report("sqlite:///sweep.db", path=path)):
        with pytest.raises(AutoLRError, match=r"cannot write the \w+ to 'sweep.db': it is "
                                              r"where the sweep is stored"):
            write("sweep.db")
    assert (tmp_path / "sweep.db").read_bytes() == stored
    os.link(tmp_path / "sweep.db", tmp_path / "linked.db")  # the same file, another name
    with pytest.raises(AutoLRError, match="it is where the sweep is stored"):
        result.report("linked.db")
    result.save("saved.json")  # a saved result read as the storage is one too
    with pytest.raises(AutoLRError, match="it is where the sweep is stored"):
        autolr.report("saved.json", path="saved.json")
    ray_folder = tmp_path / "ray"  # a Ray storage: its sweeps' files are kept alike
    ray_folder.mkdir()
    result.save(ray_folder / "digits.autolr.json")
    with pytest.raises(AutoLRError, match="it is where the sweep is stored"):
        autolr.report(str(ray_folder), path=ray_folder / "digits.autolr.json")
    assert autolr.report(str(ray_folder), path=ray_folder / "report.html").is_file()


def test_save_and_report_make_missing_folders_and_refuse_a_folder_or_a_file_parent(tmp_path):
    result = TuneResult(TABLE, epochs=2)
    assert TuneResult.load(result.save(tmp_path / "new" / "deeper" / "r.json")).epochs == 2
    assert result.report(tmp_path / "pages" / "r.html").is_file()
    (tmp_path / "plain.txt").write_text("")
    for write, name in ((result.save, "autolr-result.json"),
                        (result.report, "autolr-report.html")):
        with pytest.raises(AutoLRError, match=f"it is a folder; give a file name in it, "
                                              f"such as '.*/{name}'"):
            write(tmp_path)
        with pytest.raises(AutoLRError, match="plain.txt' is a file, not a folder"):
            write(tmp_path / "plain.txt" / "r.json")
    assert (tmp_path / "plain.txt").read_text() == ""


def test_a_file_that_is_not_autolrs_is_never_replaced(tmp_path):
    # a report over another sweep's journal replaced it with HTML, silently (helper-40)
    result = TuneResult(TABLE, epochs=2)
    theirs = {"other.log": '{"op_code": 0, "worker_id": "x"}\n', "model.py": "import torch\n",
              "notes.md": "# notes\n", "config.json": '{"lr": 0.1}\n'}
    for name, text in theirs.items():
        (tmp_path / name).write_text(text)
        for write, kind in ((result.report, "an HTML page"), (result.save, "a result autolr")):
            with pytest.raises(AutoLRError, match=f"the file there is not {kind}"):
                write(tmp_path / name)
        assert (tmp_path / name).read_text() == text
    # its own files, an empty one, or any HTML page are written over as before
    report, saved = result.report(tmp_path / "r.html"), result.save(tmp_path / "r.json")
    assert result.report(report) and result.save(saved)
    (tmp_path / "empty.json").touch()
    (tmp_path / "page.html").write_text("\ufeff <!DOCTYPE HTML><p>old</p>")
    assert result.save(tmp_path / "empty.json") and result.report(tmp_path / "page.html")


def test_loading_anything_else_is_a_clear_error(tmp_path):
    bad = tmp_path / "x.json"
    for text in ('{"some": "json"}', '{"format": "autolr.TuneResult/1", "metric": "val_loss"}'):
        bad.write_text(text)
        with pytest.raises(AutoLRError, match="not a file written by TuneResult.save"):
            TuneResult.load(bad)
    with pytest.raises(AutoLRError, match="cannot read"):
        TuneResult.load(tmp_path / "missing.json")


def test_loading_a_storage_without_the_sweep_says_what_it_holds_and_creates_nothing(
        tmp_path):
    import optuna

    import autolr

    for missing in (f"sqlite:///{tmp_path / 'typo.db'}", str(tmp_path / "typo.log")):
        with pytest.raises(AutoLRError, match="no sweep is stored at .* does not exist"):
            autolr.load(missing)
    assert list(tmp_path.iterdir()) == []  # reading a typo'd path left no empty file behind
    for name, storage in (("empty.db", f"sqlite:///{tmp_path / 'empty.db'}"),
                          ("empty.log", str(tmp_path / "empty.log"))):
        (tmp_path / name).touch()  # read, Optuna wrote its tables into it (helper-40)
        with pytest.raises(AutoLRError, match="no sweep is stored at .* is an empty file"):
            autolr.load(storage)
        assert (tmp_path / name).stat().st_size == 0
        (tmp_path / name).unlink()
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    optuna.storages.RDBStorage(url)  # a database with no study in it
    with pytest.raises(AutoLRError, match="holds no sweep yet: run autolr.tune"):
        autolr.load(url)
    for name in ("a", "b"):  # sweeps as autolr makes them: its settings first
        optuna.create_study(study_name=name, storage=url).set_user_attr("metric", "val_loss")
    with pytest.raises(AutoLRError, match=r"holds 2 sweeps \('a', 'b'\); say which with "
                                          "study_name="):
        autolr.load(url)
    with pytest.raises(AutoLRError, match=r"no study 'c' in .*; it holds: 'a', 'b'\."):
        autolr.load(url, "c")


def test_a_report_path_ending_in_a_slash_names_a_folder_not_a_file(tmp_path):
    # Path() drops the slash: the report was written as a file named like the folder
    result = TuneResult([TrialRecord(0, "complete", TrialConfig(1e-3).to_dict(),
                                     values=(1.0, 0.5))])
    for write in (result.report, result.save):
        with pytest.raises(AutoLRError, match="it names a folder; give a file name"):
            write(f"{tmp_path}/new/")
    assert not (tmp_path / "new").exists()


def test_a_path_the_write_would_fail_on_is_refused_before_the_work_even_as_root(tmp_path):
    # os.access says yes to root for /proc: a CLI sweep ran to its end, then failed there;
    # a name too long was a raw OSError from stat()
    result = TuneResult([TrialRecord(0, "complete", TrialConfig(1e-3).to_dict(),
                                     values=(1.0, 0.5))])
    for write in (result.report, result.save):
        with pytest.raises(AutoLRError, match="cannot write the .* to '/proc/r.html'"):
            write("/proc/r.html")
        with pytest.raises(AutoLRError, match="File name too long; give another path"):
            write(tmp_path / ("a" * 300))
    near_the_limit = tmp_path / ("b" * 250)  # fits; the partial file's name is cut to fit
    assert result.save(near_the_limit).is_file()
    assert [p.name for p in tmp_path.iterdir()] == [near_the_limit.name]  # no probe left
    multibyte = tmp_path / ("é" * 125 + ".json")  # 255 bytes: cut by bytes, not characters
    assert result.save(multibyte).is_file()
    # a symlink whose target's folder is missing: the target's nearest folder is checked
    (tmp_path / "link.html").symlink_to("/proc/nope/r.html")
    with pytest.raises(AutoLRError, match="cannot write the report to .*link.html"):
        result.report(tmp_path / "link.html")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [near_the_limit.name, multibyte.name, "link.html"])


def test_a_report_through_a_symlink_writes_the_file_it_points_to(tmp_path):
    # the write-then-rename replaced the link itself with a regular file
    result = TuneResult([record(0, "complete", 1e-3, [0.5])])
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "report.html").write_text("<html>old</html>")
    link = tmp_path / "link.html"
    link.symlink_to(tmp_path / "shared" / "report.html")
    assert result.report(link) == link
    assert link.is_symlink() and "<html" in (tmp_path / "shared" / "report.html").read_text()


def test_a_report_to_dev_stdout_goes_to_standard_output_and_leaves_the_link(tmp_path):
    import subprocess
    import sys

    code = ("from autolr.result import TuneResult, TrialRecord\n"
            "from autolr.space import TrialConfig\n"
            "print('before')\n"
            "TuneResult([TrialRecord(0, 'complete', TrialConfig(1e-3).to_dict(), "
            "values=(1.0, 0.5))]).report('/dev/stdout')\n"
            "print('after')\n")
    out = tmp_path / "out.txt"
    with open(out, "w") as stream:  # redirected to a file, as `> out.txt` does
        subprocess.run([sys.executable, "-c", code], stdout=stream, check=True)
    text = out.read_text()
    # in order: print() and the report share one file offset, nothing overwrote another
    assert text.startswith("before\n<") and text.endswith("</html>after\n"), text[-100:]
    assert os.path.islink("/dev/stdout")


def test_only_names_of_open_files_are_streams_not_files_under_dev():
    from autolr.output_file import is_stream

    assert all(map(is_stream, ["/dev/stdout", "/dev/fd/1", "/proc/self/fd/1", "/proc/9/fd/3"]))
    # a report on /dev/shm (a tmpfs) is a file to replace, not a stream to append to
    assert not any(map(is_stream, ["/dev/shm/report.html", "/proc/x.html", "report.html"]))


def test_a_report_over_a_file_keeps_its_permissions_and_hard_links(tmp_path):
    result = TuneResult([record(0, "complete", 1e-3, [0.5])])
    private = tmp_path / "private.html"
    private.write_text("<html>old</html>")
    private.chmod(0o600)
    result.report(private)
    assert private.stat().st_mode & 0o777 == 0o600 and "<html" in private.read_text()
    linked = tmp_path / "a.json"
    old = TuneResult([], epochs=1).save(linked).read_text()
    os.link(linked, tmp_path / "b.json")
    result.save(linked)
    assert (tmp_path / "b.json").read_text() == linked.read_text() != old
    assert linked.stat().st_nlink == 2


def test_ratios_read_as_numbers_never_in_exponent_form():
    from autolr.result import times

    assert [times(0.35), times(4.2), times(955.4), times(12_345.0, "×")] == [
        "0.35x", "4.2x", "955x", "12,345×"]


def test_a_best_value_from_one_run_says_the_robust_pick_did_not_run(tmp_path):
    # best_value was then the sweep's luckiest run, told as if the pick had confirmed it
    unconfirmed = TuneResult(TABLE, epochs=2)
    assert "that is one run, the best of the sweep, so partly luck: the robust pick did " \
           "not run" in unconfirmed.summary()
    page = unconfirmed.report(tmp_path / "one.html").read_text(encoding="utf-8")
    assert "The best value below is one run, the best of the sweep" in page
    confirmed = dataclasses.replace(TABLE[1], seed_values=(0.3, 0.32, 0.31),
                                    holdout_values=(0.33,))
    picked = TuneResult([TABLE[0], confirmed], epochs=2)
    assert "robust pick did not run" not in picked.summary()
    assert "robust pick did not run" not in picked.report(tmp_path / "two.html").read_text(
        encoding="utf-8")


def test_an_append_only_report_file_is_refused_before_the_work(tmp_path):
    # root passes os.access; the rename onto it failed after the sweep
    import shutil
    import subprocess

    path = tmp_path / "r.html"
    path.write_text("<html>old</html>")
    if shutil.which("chattr") is None or subprocess.run(
            ["chattr", "+a", str(path)], capture_output=True).returncode != 0:
        pytest.skip("chattr +a needs root and a file system that keeps the flag")
    try:
        with pytest.raises(AutoLRError, match="Operation not permitted"):
            TuneResult(TABLE, epochs=2).report(path)
        assert path.read_text() == "<html>old</html>"
    finally:
        subprocess.run(["chattr", "-a", str(path)], check=True)


def test_a_warmup_of_two_and_a_half_percent_is_not_shown_as_two(tmp_path):
    from autolr.cli import format_table

    result = TuneResult([record(0, "complete", 1e-3, [0.9, 0.5], warmup_fraction=0.025)],
                        epochs=2)
    assert "warmup 2.5%" in result.summary()
    assert "  2.5%  " in format_table(result, 5)
    page = result.report(tmp_path / "r.html").read_text(encoding="utf-8")
    assert "2.5% of training" in page and "2% of training" not in page
