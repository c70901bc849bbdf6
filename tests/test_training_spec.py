"""The training run's arithmetic, shared by every rank and by bench/explore.py."""

from recsys_spark.training.spec import steps_per_epoch, warmup_scale


def test_warmup_ramps_linearly_then_holds_the_full_rate():
    assert [warmup_scale(step, 4) for step in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert warmup_scale(0, 0) == 1.0 and warmup_scale(7, 0) == 1.0  # 0: no warm-up
    assert warmup_scale(0, 1) == 1.0


def test_steps_per_epoch_split_one_pass_across_ranks_and_never_zero():
    assert steps_per_epoch(372, 32, 2) == 5
    assert steps_per_epoch(10, 32, 2) == 1
