"""The conditional WGAN-GP (archs4.gan): rare-label choice, determinism, use of the condition,
original scale, study-centred rows, conditioning on real label sets and studies, divergence, and
pickle-free persistence."""

from __future__ import annotations

import dataclasses
import io
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from archs4.gan import (
    GanConfig,
    GanDivergedError,
    GanFileError,
    TrainedGan,
    load_gan,
    rare_labels,
    save_gan,
    synthesize,
    synthetic_rows_for,
    train_gan,
)

LABELS = ["brain", "liver", "lung", "ovary", "skin"]
# Small enough to train in well under a second.
TINY = GanConfig(
    latent_dim=8,
    generator_hidden=(32, 32),
    critic_hidden=(32, 32),
    epochs=3,
    batch_size=64,
    n_critic=2,
    num_threads=1,
    progress_every=1,
)


def small_problem(seed: int = 0, n_rows: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """300 rows x 10 features, 5 labels; ovary and skin are rare (about 4% and 3%)."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((n_rows, len(LABELS))) < [0.3, 0.3, 0.2, 0.04, 0.03]).astype(np.int8)
    labels[:3, 3] = 1
    labels[3:6, 4] = 1
    shifts = rng.normal(0.0, 2.0, size=(len(LABELS), 10))
    features = rng.normal(size=(n_rows, 10)) + labels @ shifts
    return features.astype(np.float32), labels


@pytest.fixture(scope="module")
def problem() -> tuple[np.ndarray, np.ndarray]:
    return small_problem()


@pytest.fixture(scope="module")
def trained(problem: tuple[np.ndarray, np.ndarray]) -> TrainedGan:
    features, labels = problem
    return train_gan(features, labels, TINY)


def weights_of(gan: TrainedGan) -> dict[str, torch.Tensor]:
    return {
        **{f"generator.{k}": v for k, v in gan.generator.state_dict().items()},
        **{f"critic.{k}": v for k, v in gan.critic.state_dict().items()},
    }


# ---------------------------------------------------------------------------------------------
# rare_labels


def hand_made_labels() -> np.ndarray:
    """100 rows: brain 50, liver 40, lung 5, ovary 3, skin 0."""
    labels = np.zeros((100, len(LABELS)), dtype=np.int8)
    labels[:50, 0] = 1
    labels[50:90, 1] = 1
    labels[:5, 2] = 1
    labels[90:93, 3] = 1
    return labels


def test_rare_labels_keeps_labels_at_or_under_the_count_and_always_brain() -> None:
    labels = hand_made_labels()
    # lung has exactly 5 rows: "at most" includes it. brain (50 rows) is in because of 'always';
    # skin (no train row) cannot be augmented and is left out.
    assert rare_labels(labels, LABELS, max_train_count=5) == ["brain", "lung", "ovary"]
    assert rare_labels(labels, LABELS, max_train_count=4) == ["brain", "ovary"]
    assert rare_labels(labels, LABELS, max_train_count=5, always=()) == ["lung", "ovary"]
    assert rare_labels(labels, LABELS, max_train_count=40, always=()) == ["liver", "lung", "ovary"]


def test_rare_labels_default_threshold_is_five_percent_of_train_rows() -> None:
    labels = hand_made_labels()  # 100 rows: threshold 5
    assert rare_labels(labels, LABELS) == ["brain", "lung", "ovary"]
    assert rare_labels(labels, LABELS, max_train_fraction=0.04) == ["brain", "ovary"]


def test_rare_labels_refuses_unknown_always_names_and_mismatched_names() -> None:
    with pytest.raises(ValueError, match="always"):
        rare_labels(hand_made_labels(), LABELS, always=("brian",))
    with pytest.raises(ValueError, match="label names"):
        rare_labels(hand_made_labels(), LABELS[:4])


# ---------------------------------------------------------------------------------------------
# Training


def test_training_is_bit_identical_for_a_seed_and_differs_for_another(
    problem: tuple[np.ndarray, np.ndarray], trained: TrainedGan
) -> None:
    features, labels = problem
    # Whatever state the caller left the global RNG in, the seed alone decides.
    torch.manual_seed(12345)
    again = train_gan(features, labels, TINY)
    first, second = weights_of(trained), weights_of(again)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[name], second[name]) for name in first)
    assert trained.history == again.history
    # ... and one training gives one file (its wall time, stored once, made two).
    files = [io.BytesIO(), io.BytesIO()]
    save_gan(trained, files[0])
    save_gan(again, files[1])
    assert files[0].getvalue() == files[1].getvalue()
    conditions = labels[:50]
    assert np.array_equal(
        synthesize(trained, conditions, seed=7), synthesize(again, conditions, seed=7)
    )

    other = train_gan(features, labels, dataclasses.replace(TINY, seed=1))
    other_weights = weights_of(other)
    assert any(not torch.equal(first[name], other_weights[name]) for name in first)
    assert not np.array_equal(
        synthesize(trained, conditions, seed=7), synthesize(other, conditions, seed=7)
    )
    # The sampling seed matters too.
    assert not np.array_equal(
        synthesize(trained, conditions, seed=7), synthesize(trained, conditions, seed=8)
    )


def test_training_restores_torch_state_and_leaves_the_global_rng_alone(
    problem: tuple[np.ndarray, np.ndarray],
) -> None:
    features, labels = problem
    threads_before = torch.get_num_threads()
    deterministic_before = torch.are_deterministic_algorithms_enabled()
    torch.manual_seed(1234)
    expected_next = torch.rand(3)
    torch.manual_seed(1234)
    other_threads = 2 if threads_before == 1 else 1
    train_gan(features, labels, dataclasses.replace(TINY, epochs=1, num_threads=other_threads))
    assert torch.equal(torch.rand(3), expected_next)
    assert torch.get_num_threads() == threads_before
    assert torch.are_deterministic_algorithms_enabled() == deterministic_before


def test_losses_are_finite_one_per_epoch_and_progress_is_reported(
    problem: tuple[np.ndarray, np.ndarray],
) -> None:
    features, labels = problem
    lines: list[str] = []
    gan = train_gan(features, labels, TINY, progress=lines.append)
    history = gan.history
    for series in (history.critic_loss, history.generator_loss, history.wasserstein):
        assert len(series) == TINY.epochs
        assert np.isfinite(series).all()
    epoch_lines = [line for line in lines if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in epoch_lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert all("critic" in line and "generator" in line for line in epoch_lines)


def test_non_finite_losses_raise_gan_diverged_error(
    problem: tuple[np.ndarray, np.ndarray],
) -> None:
    features, labels = problem
    exploding = dataclasses.replace(TINY, critic_lr=1e30, generator_lr=1e30)
    with pytest.raises(GanDivergedError, match="diverged at epoch"):
        train_gan(features, labels, exploding)


def test_the_condition_steers_the_generator_towards_its_class() -> None:
    """Two classes, one condition column each, means +3 and -3 in every feature: an
    unconditional generator would give both conditions the pooled mean 0."""
    rng = np.random.default_rng(0)
    n_rows = 400
    labels = np.zeros((n_rows, 2), dtype=np.int8)
    labels[: n_rows // 2, 0] = 1
    labels[n_rows // 2 :, 1] = 1
    features = rng.normal(size=(n_rows, 5)) + np.where(labels[:, :1] == 1, 3.0, -3.0)
    config = dataclasses.replace(
        TINY, epochs=40, n_critic=3, generator_lr=1e-3, critic_lr=1e-3, progress_every=100
    )
    gan = train_gan(features, labels, config)
    first = synthesize(gan, np.tile([1, 0], (500, 1)), seed=1).mean(axis=0)
    second = synthesize(gan, np.tile([0, 1], (500, 1)), seed=1).mean(axis=0)
    assert (first > 1.5).all(), first
    assert (second < -1.5).all(), second


def test_synthesize_returns_rows_in_the_original_scale() -> None:
    rng = np.random.default_rng(0)
    labels = (rng.random((300, 3)) < 0.3).astype(np.int8)
    features = 100.0 + 5.0 * rng.normal(size=(300, 4))
    gan = train_gan(features, labels, TINY)
    rows = synthesize(gan, labels, seed=0)
    assert rows.dtype == np.float32
    assert rows.shape == (300, 4)
    # In standardized units the generator's mean is within a few scales of 0, i.e. within
    # ~5 x a few of 100 here; without the inverse transform it would be near 0.
    assert np.abs(rows.mean(axis=0) - 100.0).max() < 15.0
    assert synthesize(gan, labels[:0], seed=0).shape == (0, 4)
    with pytest.raises(ValueError, match="label columns"):
        synthesize(gan, labels[:, :2], seed=0)


def two_studies(n_per_study: int = 150) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One label everywhere, two studies 20 apart in every feature, unit spread in each."""
    rng = np.random.default_rng(3)
    studies = np.repeat(np.array([7, 42]), n_per_study)
    features = rng.normal(size=(2 * n_per_study, 4)) + np.where(studies == 42, 20.0, 0.0)[:, None]
    return features, np.ones((2 * n_per_study, 1), dtype=np.int8), studies


def test_rows_are_placed_in_the_study_they_are_drawn_for() -> None:
    """A study-centred GAN adds the centroid of the study it is given: rows drawn for study 42
    lie around 20 and rows for study 7 around 0; trained without studies, both would come
    from one distribution around the pooled mean 10."""
    features, labels, studies = two_studies()
    gan = train_gan(features, labels, TINY, studies=studies)
    assert gan.study_ids.tolist() == [7, 42]
    assert np.allclose(gan.study_centroids[1] - gan.study_centroids[0], 20.0, atol=0.5)
    condition = np.ones((400, 1), dtype=np.int8)
    near_zero = synthesize(gan, condition, seed=0, studies=np.full(400, 7)).mean(axis=0)
    near_twenty = synthesize(gan, condition, seed=0, studies=np.full(400, 42)).mean(axis=0)
    assert np.allclose(near_twenty - near_zero, 20.0, atol=1.0), (near_zero, near_twenty)


def test_a_study_gan_refuses_rows_without_or_outside_its_studies() -> None:
    features, labels, studies = two_studies(20)
    gan = train_gan(features, labels, TINY, studies=studies)
    condition = np.ones((3, 1), dtype=np.int8)
    with pytest.raises(ValueError, match="pass each row's study"):
        synthesize(gan, condition, seed=0)
    with pytest.raises(ValueError, match=r"studies \[8\] are not the GAN's"):
        synthesize(gan, condition, seed=0, studies=np.array([7, 8, 42]))
    with pytest.raises(ValueError, match="studies for 3 rows"):
        synthesize(gan, condition, seed=0, studies=np.array([7, 42]))
    with pytest.raises(ValueError, match="integer study ids"):
        train_gan(features, labels, TINY, studies=studies.astype(float))
    with pytest.raises(ValueError, match="integer study ids"):
        train_gan(features, labels, TINY, studies=studies[:-1])


def test_synthetic_rows_take_the_study_of_their_carrier_row() -> None:
    """Every synthetic row of a label is in a study where a train row carries it: with the
    label only in study 42, its rows all lie around 20."""
    features, _, studies = two_studies()
    labels = np.zeros((features.shape[0], 2), dtype=np.int8)
    labels[:, 0] = 1
    labels[studies == 42, 1] = 1
    gan = train_gan(features, labels, TINY, studies=studies)
    rows, label_sets, _ = synthetic_rows_for(
        gan, labels, ["common", "rare"], ["rare"], 200, seed=1, studies=studies
    )
    assert (label_sets[:, 1] == 1).all()
    assert abs(rows.mean() - 20.0) < 1.0


def test_training_refuses_bad_inputs(problem: tuple[np.ndarray, np.ndarray]) -> None:
    features, labels = problem
    broken = features.copy()
    broken[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        train_gan(broken, labels, TINY)
    with pytest.raises(ValueError, match="one row per label row"):
        train_gan(features[:-1], labels, TINY)
    with pytest.raises(ValueError, match="positive"):
        GanConfig(epochs=0)


# ---------------------------------------------------------------------------------------------
# Conditioning on real label sets


def test_synthetic_rows_are_conditioned_on_real_label_sets_of_the_rare_label(
    problem: tuple[np.ndarray, np.ndarray], trained: TrainedGan
) -> None:
    features, labels = problem
    rare = ["ovary", "skin"]
    rows, label_sets, label_of_row = synthetic_rows_for(trained, labels, LABELS, rare, 25, seed=3)
    assert rows.shape == (50, features.shape[1])
    assert label_sets.shape == (50, len(LABELS))
    assert label_of_row.tolist() == ["ovary"] * 25 + ["skin"] * 25
    real_sets = {tuple(row) for row in labels}
    for label_set, name in zip(label_sets, label_of_row, strict=True):
        assert label_set[LABELS.index(name)] == 1  # carries the label it was made for
        assert tuple(label_set) in real_sets  # and is a label set that occurs in the data
    # The rows are what synthesize gives for those label sets, and reproducible.
    assert np.array_equal(rows, synthesize(trained, label_sets, seed=3))
    again = synthetic_rows_for(trained, labels, LABELS, rare, 25, seed=3)
    assert np.array_equal(again[0], rows) and np.array_equal(again[1], label_sets)


def test_synthetic_rows_for_refuses_a_label_without_train_rows(trained: TrainedGan) -> None:
    labels = hand_made_labels()  # skin has no row
    with pytest.raises(ValueError, match="no train row carries 'skin'"):
        synthetic_rows_for(trained, labels, LABELS, ["skin"], 5, seed=0)


# ---------------------------------------------------------------------------------------------
# Persistence


def test_save_and_load_round_trip_gives_identical_samples(
    problem: tuple[np.ndarray, np.ndarray], trained: TrainedGan, tmp_path: Path
) -> None:
    _, labels = problem
    path = tmp_path / "gan.pt"
    save_gan(trained, path)
    loaded = load_gan(path)
    assert loaded.config == trained.config
    assert loaded.history == trained.history
    assert np.array_equal(loaded.feature_mean, trained.feature_mean)
    assert np.array_equal(loaded.feature_scale, trained.feature_scale)
    assert np.array_equal(loaded.study_ids, trained.study_ids)
    assert np.array_equal(loaded.study_centroids, trained.study_centroids)
    original, restored = weights_of(trained), weights_of(loaded)
    assert all(torch.equal(original[name], restored[name]) for name in original)
    assert np.array_equal(synthesize(loaded, labels, seed=5), synthesize(trained, labels, seed=5))

    stream = io.BytesIO()
    save_gan(trained, stream)
    stream.seek(0)
    from_stream = load_gan(stream)
    assert np.array_equal(
        synthesize(from_stream, labels, seed=5), synthesize(trained, labels, seed=5)
    )


def test_the_saved_file_holds_tensors_only(trained: TrainedGan, tmp_path: Path) -> None:
    path = tmp_path / "gan.pt"
    save_gan(trained, path)
    payload = torch.load(path, weights_only=True)

    def leaves(value: object) -> list[object]:
        if isinstance(value, dict):
            return [leaf for item in value.values() for leaf in leaves(item)]
        return [value]

    assert all(isinstance(leaf, torch.Tensor) for leaf in leaves(payload))


def leave_marker(path: str) -> str:
    """What the malicious payload below runs when unpickled: leaves a file behind."""
    Path(path).write_text("code ran")
    return "pwned"


class CodeOnLoad:
    """An object whose unpickling calls leave_marker (any callable could be named here)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return leave_marker, (str(self.marker),)


def test_a_file_with_a_pickled_object_is_refused_and_nothing_runs(
    trained: TrainedGan, tmp_path: Path
) -> None:
    marker = tmp_path / "marker.txt"
    path = tmp_path / "evil.pt"
    buffer = io.BytesIO()
    save_gan(trained, buffer)
    payload = torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)
    payload["description"] = CodeOnLoad(marker)
    torch.save(payload, path)

    with pytest.raises(GanFileError, match="refusing") as raised:
        load_gan(path)
    assert isinstance(raised.value.__cause__, pickle.UnpicklingError)
    assert not marker.exists()
    # The file is truly dangerous: a plain (non weights-only) load runs the payload.
    torch.load(path, weights_only=False)
    assert marker.read_text() == "code ran"


def test_load_gan_refuses_other_torch_files(trained: TrainedGan, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    save_gan(trained, buffer)
    payload = torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)
    payload["generator"]["network.0.weight"] = torch.zeros(2, 2)
    torch.save(payload, tmp_path / "mismatched.pt")
    with pytest.raises(GanFileError, match="inconsistent"):
        load_gan(tmp_path / "mismatched.pt")

    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(GanFileError, match="not a GAN file"):
        load_gan(path)
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(GanFileError):
        load_gan(tmp_path / "junk.pt")
