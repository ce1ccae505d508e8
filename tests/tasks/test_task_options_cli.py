"""``--task-option TASK.KEY=VALUE`` (harness.tasks.task_options): parsed, checked by each task's options class,
reaching the task's loader, and entering the run's record, evaluation signature and pair-cache key."""

from __future__ import annotations

import json

import pytest

from harness.cli import main
from harness.core.errors import HarnessError
from harness.tasks import TASKS, get_task
from harness.tasks.task_options import check_task_options, parse_task_options, task_options

OSF_TRAIN = 1797  # VQA-RAD's OSF release: every question not in the test phrasings (docs/tasks.md)


def test_items_parse_into_options_per_task_and_a_later_item_wins():
    assert parse_task_options(["vqa_rad.source=osf", "synth_vqa.test_size=5", "synth_vqa.test_size=7",
                               "vqa_rad.annotations=a=b"]) == \
        {"vqa_rad": {"source": "osf", "annotations": "a=b"}, "synth_vqa": {"test_size": "7"}}


@pytest.mark.parametrize("item", ["vqa_rad", "vqa_rad=osf", "source=osf", ".source=osf", "vqa_rad.=osf"])
def test_a_malformed_item_is_one_line(item):
    with pytest.raises(HarnessError, match=r"--task-option expects TASK\.KEY=VALUE"):
        parse_task_options([item])


@pytest.mark.parametrize("options, tasks, message", [
    ({"vqa_rad": {"sorce": "osf"}}, None, r"task 'vqa_rad' has no option 'sorce'; did you mean 'source'\?"),
    ({"vqa_rad": {"source": "nope"}}, None, r"task 'vqa_rad': option source='nope' is not one of"),
    ({"synth_vqa": {"test_size": "many"}}, None, r"task 'synth_vqa': option 'test_size' expects int"),
    ({"vqa_rd": {"source": "osf"}}, None, r"unknown task 'vqa_rd'; did you mean 'vqa_rad'\?"),
    ({"vqa_rad": {"source": "osf"}}, ["synth_vqa"], r"task 'vqa_rad' is not among this command's tasks"),
])
def test_bad_task_options_are_one_line_errors(options, tasks, message):
    with pytest.raises(HarnessError, match=message) as caught:
        check_task_options(options, tasks)
    assert "\n" not in str(caught.value)


def test_checked_options_are_typed_by_the_tasks_options_class():
    assert check_task_options({"synth_vqa": {"test_size": "20", "seed": "3"}, "vqa_rad": {"strict": "yes"}}) == \
        {"synth_vqa": {"seed": 3, "test_size": 20}, "vqa_rad": {"strict": True}}


def test_get_task_carries_the_active_options_and_the_registered_task_is_unchanged():
    registered = TASKS.get("vqa_rad")
    with task_options({"vqa_rad": {"source": "osf"}}):
        assert get_task("vqa_rad").options == {**registered.options, "source": "osf"}
        with task_options({"vqa_rad": {"check_images": "none"}}):
            assert get_task("vqa_rad").options == {**registered.options, "source": "osf", "check_images": "none"}
        assert "check_images" not in get_task("vqa_rad").options
        assert get_task("synth_vqa") is TASKS.get("synth_vqa")  # other tasks untouched
    assert get_task("vqa_rad") is registered and "source" not in registered.options


def test_the_osf_source_reaches_the_vqa_rad_loader_from_the_command_line(shared_data, tmp_path, capsys):
    """The OSF release has another train split (1,797 questions) than the standard split files."""
    (tmp_path / "vqa_rad").symlink_to(shared_data / "vqa_rad")  # the other tasks' data is not read
    default = get_task("vqa_rad").sizes(tmp_path)
    assert main(["tasks", "--data-dir", str(tmp_path), "--format", "json",
                 "--task-option", "vqa_rad.source=osf"]) == 0
    osf = {r["name"]: r for r in json.loads(capsys.readouterr().out)}["vqa_rad"]["sizes"]
    assert osf == {"train": OSF_TRAIN, "test": 451} and default["train"] != OSF_TRAIN
    with task_options({"vqa_rad": {"source": "osf"}}):
        assert len(get_task("vqa_rad").load("train", data_dir=shared_data)) == OSF_TRAIN


def test_an_evaluations_data_record_names_the_task_options(shared_data):
    from harness.evaluation.config import EvalConfig
    from harness.evaluation.engine import load_task_data

    config = EvalConfig(limit=3)
    with task_options({"vqa_rad": {"source": "osf"}}):
        osf = load_task_data(["vqa_rad"], config, shared_data)["vqa_rad"].record
    plain = load_task_data(["vqa_rad"], config, shared_data)["vqa_rad"].record
    assert osf["options"]["source"] == "osf" and "source" not in plain["options"]


def test_task_options_enter_the_evaluation_signature_and_the_pair_cache_key(shared_data):
    """Even options that leave the items as they are (check_images) keep two runs apart."""
    from harness.experiments.pipeline import RunConfig, _eval_signature, check_config, pairs_dir

    def config(**task_opts):
        made = RunConfig(method="mmedpo", tasks=("vqa_rad",), data_dir=str(shared_data), eval_limit=5,
                         train_limit=5, task_options=task_opts)
        check_config(made)
        return made

    plain, same_items = config(), config(vqa_rad={"check_images": "none"})
    assert same_items.task_options == {"vqa_rad": {"check_images": "none"}}
    with task_options(same_items.task_options):
        signature, folder = _eval_signature(same_items), pairs_dir(same_items, "tiny@x", {})
    assert signature["data"] == _eval_signature(plain)["data"]  # the same items...
    assert signature != _eval_signature(plain)  # ...but not the same runs
    assert signature["task_options"] == {"vqa_rad": {"check_images": "none"}}
    assert folder != pairs_dir(plain, "tiny@x", {})
    assert "task_options" not in _eval_signature(plain)  # runs without task options keep their old keys


def test_a_path_option_enters_keys_by_its_name_only():
    from harness.tasks.task_options import keyed

    assert keyed({"vqa_rad": {"annotations": "/home/me/data/vqa_rad", "source": "hub", "strict": True}}) == \
        {"vqa_rad": {"annotations": "vqa_rad", "source": "hub", "strict": "True"}}


def test_a_run_refuses_options_for_a_task_it_does_not_run():
    from harness.experiments.pipeline import RunConfig, check_config

    with pytest.raises(HarnessError, match="not among this command's tasks"):
        check_config(RunConfig(method="dpo", tasks=("synth_vqa",), task_options={"vqa_rad": {"source": "osf"}}))


def test_a_probe_task_takes_the_options_of_the_task_it_probes():
    """synth_probe passes its options to synth_vqa's loader, so synth_vqa's options class checks them."""
    assert check_task_options({"synth_probe": {"test_size": "50"}}) == {"synth_probe": {"test_size": 50}}
    with pytest.raises(HarnessError, match=r"task 'synth_probe' has no option 'tset_size'; did you mean 'test_size'"):
        check_task_options({"synth_probe": {"tset_size": "50"}})
