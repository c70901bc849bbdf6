"""Whether a training run resumes its checkpoint folder: only the same model version on the same inputs."""

from recsys_spark.training import checkpoints


def test_a_retry_resumes_and_changed_inputs_or_settings_start_over(tmp_path):
    table = tmp_path / "train"
    table.mkdir()
    (table / "part-0.parquet").write_bytes(b"x" * 10)
    (table / "_SUCCESS").write_bytes(b"")
    folder = str(tmp_path / "ck")
    first = {"model_version": "2026-11-27-abc", "inputs": checkpoints.inputs_digest([str(table)])}
    assert checkpoints.prepare(folder, first) is False  # nothing to resume: a fresh, empty folder
    (tmp_path / "ck" / "ckpt-3.index").write_text("weights")
    same = {"model_version": "2026-11-27-abc", "inputs": checkpoints.inputs_digest([str(table)])}
    assert same == first and checkpoints.prepare(folder, same) is True  # the retry
    assert (tmp_path / "ck" / "ckpt-3.index").exists()
    assert checkpoints.prepare(folder, same, fresh=True) is False  # --fresh
    assert not (tmp_path / "ck" / "ckpt-3.index").exists()
    (tmp_path / "ck" / "ckpt-3.index").write_text("weights")
    (table / "part-0.parquet").write_bytes(b"x" * 11)  # a rebuilt table
    rebuilt = {"model_version": "2026-11-27-abc", "inputs": checkpoints.inputs_digest([str(table)])}
    assert rebuilt != first and checkpoints.prepare(folder, rebuilt) is False
    assert not (tmp_path / "ck" / "ckpt-3.index").exists()
    (tmp_path / "ck" / "ckpt-3.index").write_text("weights")
    assert checkpoints.prepare(folder, dict(rebuilt, model_version="2026-11-27-def")) is False  # other settings
    assert not (tmp_path / "ck" / "ckpt-3.index").exists()
