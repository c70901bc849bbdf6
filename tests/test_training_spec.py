"""The training run's arithmetic, shared by every rank and by bench/explore.py."""

from recsys_spark.training.spec import TrainSpec, steps_per_epoch, warmup_rate, warmup_scale


def test_warmup_ramps_linearly_then_holds_the_full_rate():
    assert [warmup_scale(step, 4) for step in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert warmup_scale(0, 0) == 1.0 and warmup_scale(7, 0) == 1.0  # 0: no warm-up
    assert warmup_scale(0, 1) == 1.0


def test_warmup_rate_is_set_through_the_ramp_and_the_step_after_it_then_left_alone():
    spec = _spec(warmup_steps=4)
    # scale 2 x 0.5: two ranks, the plateau decay halved the rate once
    rates = [warmup_rate(spec, 2 * 0.5, step) for step in range(7)]
    assert rates[:5] == [0.0025, 0.005, 0.0075, 0.01, 0.01] and rates[5:] == [None, None]
    assert warmup_rate(_spec(warmup_steps=0), 1.0, 0) is None


def _spec(warmup_steps: int) -> TrainSpec:
    return TrainSpec(train_url="file:///x", n_rows=10, n_users=2, n_items=3, model="mf", embedding_dim=4, l2=0.0,
                     epochs=1, batch_size=2, learning_rate=0.01, seed=0, warmup_steps=warmup_steps)


def test_steps_per_epoch_split_one_pass_across_ranks_and_never_zero():
    assert steps_per_epoch(372, 32, 2) == 5
    assert steps_per_epoch(10, 32, 2) == 1
