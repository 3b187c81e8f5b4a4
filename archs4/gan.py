"""Conditional WGAN-GP that synthesizes train rows of rare labels in the classifier's feature
space.

What it computes. ``train_gan`` fits a conditional Wasserstein GAN with gradient penalty
(Gulrajani et al. 2017, "Improved Training of Wasserstein GANs") on the TRAIN rows of the
classifier's feature space (about 50 principal components per sample, ``archs4.features``):

- the generator is an MLP from ``[z, c]`` to a feature vector, where ``z ~ N(0, I)`` is the
  latent noise and ``c`` the condition, the sample's multi-hot label set (L labels);
- the critic is an MLP from ``[x, c]`` to a score, without batch normalization (the gradient
  penalty is defined per sample, and batch norm would couple the samples of a batch);
- critic loss ``E[D(fake)] - E[D(real)] + gp_weight * E[(||grad D(interpolate)|| - 1)^2]`` on
  random interpolates between real and generated rows (same condition), ``n_critic`` critic
  steps per generator step, Adam with betas (0.5, 0.9) as in the paper (``GanConfig``);
- the rows it learns are study-centred: each train row minus the centroid of its study
  (``studies``, the split's study groups), standardized with the mean and standard deviation
  of those deviations; ``synthesize`` adds the centroid of the study it is given back, and
  returns rows in the original scale.

Why study-centred. In a compendium the study (its lab, protocol and batch) moves a profile
more than most labels do, and a rare label's train rows come from a few studies, each a tight
cluster of its own. A generator conditioned on labels alone learned a blur between those
clusters, where no real sample lies: on the calibrated demo (strong study effects) a forest
told its rows from real ones with AUROC 0.99 (0.88-0.94 with wider networks, three times the
epochs, or the study as a one-hot condition). Modelling how samples vary within a study, and
placing each synthetic row in the study of the real row whose label set conditions it, brought
the mean per-label AUROC to 0.55 at the same size and epochs (README, "GAN augmentation").
Without ``studies`` all rows form one study, and the model is the plain conditional WGAN-GP on
standardized features.

Why all train rows and not the rare ones only. A rare label has a few dozen train rows, too
few to learn a 50-dimensional distribution from; the generator learns the structure the
labels share (the main axes of variation, how a label shifts a profile) from every row and
the condition tells it which label set to draw. Rows with a rare label are oversampled in the
batches (``GanConfig.min_label_share``) so the critic sees them often enough to judge them.
``synthetic_rows_for`` then draws conditions from real train rows that carry the rare label,
so co-occurring labels (a cell line's tissue system next to its organ) stay realistic.

An epoch is ``ceil(n_rows / batch_size)`` generator steps, each preceded by ``n_critic``
critic steps (the convention of CTGAN and most WGAN-GP code).

Determinism. Training and synthesis run with ``torch.use_deterministic_algorithms(True)`` and
a fixed ``torch.set_num_threads`` (both restored afterwards); weights are initialized under a
forked, seeded global RNG (the caller's RNG state is left as it was) and every random draw
(batches, noise, interpolation weights) comes from a seeded ``torch.Generator``. On CPU the
same inputs, configuration and seed give bit-identical weights and samples. These settings are
process-wide in torch, so do not train two GANs concurrently in threads of one process.

Persistence without pickle. ``save_gan`` writes ``torch.save`` of a dict holding only tensors
(the two state dicts, the scaler, the loss history, and the configuration as UTF-8 JSON bytes
in a uint8 tensor); ``load_gan`` reads it with ``torch.load(weights_only=True)``, which refuses
any pickled object that is not a tensor or a plain container, before constructing anything.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import pickle
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import torch
from torch import nn

from archs4.features import read_payload, source_name, write_payload

FORMAT_NAME = "archs4.gan.TrainedGan"
FORMAT_VERSION = 2

# Default rarity threshold of rare_labels: a label with at most this share of the train rows.
DEFAULT_RARE_FRACTION = 0.05
# Labels augmented whatever their count (DESIGN.md, "GAN augmentation").
ALWAYS_RARE: tuple[str, ...] = ("brain",)

ProgressCallback = Callable[[str], None]


class GanDivergedError(RuntimeError):
    """A loss (or the Wasserstein estimate) became NaN or infinite during training."""

    def __init__(self, epoch: int, losses: dict[str, float]) -> None:
        values = ", ".join(f"{name} {value}" for name, value in losses.items())
        super().__init__(
            f"GAN training diverged at epoch {epoch}: {values}; lower the learning rates or "
            "raise gp_weight"
        )
        self.epoch = epoch
        self.losses = losses


class GanFileError(ValueError):
    """A file is not a GAN written by ``save_gan``, or holds content that is refused."""


@dataclass(frozen=True)
class GanConfig:
    """Hyper-parameters of ``train_gan``.

    The defaults train in about five minutes for ~2,000 train rows x 50 features and 27 labels
    (measured: 289 s on the 2-core machine, another training beside it). 600 epochs, because
    300 left the rare labels' rows together still distinguishable on the calibrated demo
    (pooled two-sample AUROC 0.77 at 300 epochs, 0.69 at 600; per label 0.55 and 0.54; one
    training each). They are the paper's settings
    (Adam betas (0.5, 0.9), n_critic 5, gradient penalty 10) except the learning rate, 2e-4
    instead of 1e-4: on a 2,500 x 50 test set with 27 labels it reached better rare-label
    fidelity in the same 300 epochs (mean correlation 0.97 against 0.93, C2ST AUROC 0.43
    against 0.64, nearest-neighbour ratio 0.68 against 0.79: closer to the real rows without
    copying them).

    ``min_label_share``: every label's rows are drawn with a weight raised so that the label
    makes up roughly this share of the rows the critic sees (rows keep weight 1 when their
    labels are common enough); 0 turns the oversampling off.
    ``num_threads``: the torch thread count during training and synthesis. It is fixed because
    a kernel may split its sums differently with another thread count, which would change the
    last bits of the weights. One by default: these matrices are small (batches of 128 rows,
    128 units), so a second thread gains nothing on an idle machine (measured: the same time),
    and when other work holds the cores (Dagster runs assets in parallel processes) torch's
    OpenMP threads wait on each other: 10 epochs took 191 s with 2 threads against 3.5 s with
    1 on the 2-core machine under a load of 4.5.
    """

    latent_dim: int = 32
    generator_hidden: tuple[int, ...] = (128, 128)
    critic_hidden: tuple[int, ...] = (128, 128)
    epochs: int = 600
    batch_size: int = 128
    n_critic: int = 5
    gp_weight: float = 10.0
    generator_lr: float = 2e-4
    critic_lr: float = 2e-4
    adam_betas: tuple[float, float] = (0.5, 0.9)
    min_label_share: float = 0.05
    num_threads: int = 1
    seed: int = 0
    progress_every: int = 10

    def __post_init__(self) -> None:
        positive = ("latent_dim", "epochs", "batch_size", "n_critic", "num_threads")
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise ValueError(f"GanConfig.{name} must be positive, got {getattr(self, name)}")
        if self.progress_every < 1:
            raise ValueError("GanConfig.progress_every must be positive")
        for name in ("generator_hidden", "critic_hidden"):
            sizes = getattr(self, name)
            if not sizes or any(int(size) < 1 for size in sizes):
                raise ValueError(f"GanConfig.{name} must be a non-empty tuple of positive sizes")
        if self.gp_weight < 0 or self.generator_lr <= 0 or self.critic_lr <= 0:
            raise ValueError("gp_weight must be >= 0 and learning rates > 0")
        if len(self.adam_betas) != 2 or not all(0 <= beta < 1 for beta in self.adam_betas):
            raise ValueError(f"adam_betas must be two numbers in [0, 1), got {self.adam_betas}")
        if not 0 <= self.min_label_share < 1:
            raise ValueError(f"min_label_share must be in [0, 1), got {self.min_label_share}")

    def to_json_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json_dict(cls, values: dict[str, Any]) -> GanConfig:
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown GanConfig fields {sorted(unknown)}")
        # JSON has no tuples: the sequence fields come back as lists.
        return cls(
            **{
                key: tuple(value) if isinstance(value, list) else value
                for key, value in values.items()
            }
        )


@dataclass(frozen=True)
class TrainingHistory:
    """Per-epoch means: critic loss (with the penalty), generator loss ``-E[D(fake)]`` and the
    Wasserstein estimate ``E[D(real)] - E[D(fake)]`` over the epoch's critic steps."""

    critic_loss: tuple[float, ...]
    generator_loss: tuple[float, ...]
    wasserstein: tuple[float, ...]

    def as_array(self) -> np.ndarray:
        """(epochs, 3) float64, columns critic_loss, generator_loss, wasserstein."""
        return np.array(
            [self.critic_loss, self.generator_loss, self.wasserstein], dtype=np.float64
        ).T.reshape(-1, 3)

    @classmethod
    def from_array(cls, values: np.ndarray) -> TrainingHistory:
        values = np.asarray(values, dtype=np.float64).reshape(-1, 3)
        return cls(*(tuple(float(v) for v in values[:, column]) for column in range(3)))


class ConditionalGenerator(nn.Module):
    """MLP ``[z, condition] -> standardized features`` with LeakyReLU hidden layers and a linear
    output (standardized features are unbounded)."""

    def __init__(
        self, latent_dim: int, n_labels: int, hidden: Sequence[int], n_features: int
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.network = _mlp(latent_dim + n_labels, hidden, n_features)

    def forward(self, latent: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return self.network(torch.cat([latent, condition], dim=1))


class ConditionalCritic(nn.Module):
    """MLP ``[features, condition] -> score``; no normalization layer (see the module docstring)."""

    def __init__(self, n_features: int, n_labels: int, hidden: Sequence[int]) -> None:
        super().__init__()
        self.network = _mlp(n_features + n_labels, hidden, 1)

    def forward(self, features: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return self.network(torch.cat([features, condition], dim=1)).squeeze(1)


@dataclass(frozen=True, eq=False)
class TrainedGan:
    """A trained conditional GAN and the scaler of the rows it was trained on.

    ``feature_mean`` and ``feature_scale`` (float64, one per feature) map standardized
    study-centred features back to deviations from a study centroid; ``study_ids`` (int64,
    sorted) are the studies of the train rows and ``study_centroids`` (one row of float64 per
    study) their mean train rows; ``train_seconds`` is the wall time of training, None once
    loaded from a file (the file leaves it out, so one training always gives one file).
    """

    generator: ConditionalGenerator
    critic: ConditionalCritic
    feature_mean: np.ndarray
    feature_scale: np.ndarray
    study_ids: np.ndarray
    study_centroids: np.ndarray
    n_labels: int
    config: GanConfig
    history: TrainingHistory
    train_seconds: float | None = None

    @property
    def n_features(self) -> int:
        return int(self.feature_mean.shape[0])


# ---------------------------------------------------------------------------------------------
# Rare labels


def rare_labels(
    Y_train: np.ndarray,  # noqa: N803 (the multi-hot label matrix, as in archs4.classifier)
    label_names: Sequence[str],
    *,
    max_train_count: int | None = None,
    max_train_fraction: float = DEFAULT_RARE_FRACTION,
    always: Sequence[str] = ALWAYS_RARE,
) -> list[str]:
    """The labels to augment, in ``label_names`` order: those with at most ``max_train_count``
    train rows (default: ``max_train_fraction`` = 5% of the train rows, rounded down, at least
    1), plus the labels of ``always`` (``brain``) whatever their count.

    A label without any train row is left out, ``always`` or not: there is nothing to condition
    on or interpolate between, so no method (GAN, SMOTE, oversampling) can add rows for it.
    A name in ``always`` that is not a label is an error (a typo would otherwise pass silently).
    """
    labels = _multi_hot(Y_train)
    names = [str(name) for name in label_names]
    if len(names) != labels.shape[1]:
        raise ValueError(f"{len(names)} label names for {labels.shape[1]} label columns")
    missing = [name for name in always if name not in names]
    if missing:
        raise ValueError(f"labels {missing} of 'always' are not among the label names")
    if max_train_count is None:
        if not 0 < max_train_fraction < 1:
            raise ValueError(f"max_train_fraction must be in (0, 1), got {max_train_fraction}")
        max_train_count = max(1, math.floor(max_train_fraction * labels.shape[0]))
    counts = labels.sum(axis=0)
    return [
        name
        for name, count in zip(names, counts, strict=True)
        if count > 0 and (count <= max_train_count or name in always)
    ]


# ---------------------------------------------------------------------------------------------
# Training


def _study_centred(
    features: np.ndarray, studies: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row minus its study's centroid, the study ids and the centroids (one per id)."""
    study_ids, study_of_row = _study_codes_of_rows(studies, features.shape[0])
    study_centroids = _study_centroids(features, study_of_row, study_ids.size)
    return features - study_centroids[study_of_row], study_ids, study_centroids


def train_gan(
    X_train: np.ndarray,  # noqa: N803 (features and labels keep the classifier's names)
    Y_train: np.ndarray,  # noqa: N803
    config: GanConfig | None = None,
    progress: ProgressCallback | None = None,
    *,
    studies: np.ndarray | None = None,
) -> TrainedGan:
    """Train the conditional WGAN-GP on train features X (n x d) and multi-hot labels Y (n x L),
    on each row's deviation from the centroid of its study (``studies``: one integer study id
    per row; None puts all rows in one study).

    Raises ``GanDivergedError`` as soon as an epoch's mean losses are not finite.
    """
    config = config or GanConfig()
    report = progress or (lambda _message: None)
    features, labels = _training_rows(X_train, Y_train)
    n_rows, n_features = features.shape
    n_labels = labels.shape[1]
    features, study_ids, study_centroids = _study_centred(features, studies)
    feature_mean, feature_scale = _standard_scaler(features)
    batch_size = min(config.batch_size, n_rows)
    steps_per_epoch = math.ceil(n_rows / batch_size)
    report(
        f"GAN: training on {n_rows} rows x {n_features} features, {n_labels} labels, "
        f"{study_ids.size} studies, {config.epochs} epochs of {steps_per_epoch} generator steps "
        f"({config.n_critic} critic steps each)"
    )
    started = time.perf_counter()
    with _deterministic_torch(config.num_threads):
        wgan = _new_wgan(config, n_features, n_labels)
        batches = _TrainingBatches(
            standardized=torch.from_numpy(
                ((features - feature_mean) / feature_scale).astype(np.float32)
            ),
            conditions=torch.from_numpy(labels.astype(np.float32)),
            row_weights=torch.from_numpy(_row_weights(labels, config.min_label_share)),
            batch_size=batch_size,
            latent_dim=config.latent_dim,
            random=torch.Generator().manual_seed(config.seed),
        )
        history = _train_epochs(wgan, batches, steps_per_epoch, report, started)
        wgan.critic.requires_grad_(True)
        wgan.generator.eval()
        wgan.critic.eval()
    seconds = time.perf_counter() - started
    report(f"GAN: trained in {seconds:.1f} s")
    return TrainedGan(
        generator=wgan.generator,
        critic=wgan.critic,
        feature_mean=feature_mean,
        feature_scale=feature_scale,
        study_ids=study_ids,
        study_centroids=study_centroids,
        n_labels=n_labels,
        config=config,
        history=history,
        train_seconds=seconds,
    )


def _training_rows(
    X_train: np.ndarray,  # noqa: N803
    Y_train: np.ndarray,  # noqa: N803
) -> tuple[np.ndarray, np.ndarray]:
    """The train features as float64 and the labels as int8, checked to match and be finite."""
    features = np.asarray(X_train, dtype=np.float64)
    labels = _multi_hot(Y_train)
    if features.ndim != 2 or features.shape[0] != labels.shape[0]:
        raise ValueError(
            f"X_train must be (n, d) with one row per label row; got {features.shape} features "
            f"and {labels.shape} labels"
        )
    if features.shape[0] < 2:
        raise ValueError("need at least 2 train rows")
    if not np.isfinite(features).all():
        raise ValueError("X_train contains NaN or infinite values")
    return features, labels


def _study_codes_of_rows(studies: np.ndarray | None, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """The sorted distinct study ids and each row's position among them."""
    if studies is None:
        return np.zeros(1, dtype=np.int64), np.zeros(n_rows, dtype=np.int64)
    ids = np.asarray(studies)
    if ids.shape != (n_rows,) or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"studies must be {n_rows} integer study ids, got {ids.dtype} {ids.shape}")
    distinct, codes = np.unique(ids.astype(np.int64), return_inverse=True)
    return distinct, codes.astype(np.int64)


def _study_centroids(features: np.ndarray, study_of_row: np.ndarray, n_studies: int) -> np.ndarray:
    """Mean row of each study (float64, studies x features)."""
    sums = np.zeros((n_studies, features.shape[1]), dtype=np.float64)
    np.add.at(sums, study_of_row, features)
    return sums / np.bincount(study_of_row, minlength=n_studies)[:, None]


def _standard_scaler(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation of the train rows."""
    feature_mean = features.mean(axis=0)
    feature_scale = features.std(axis=0)
    # A constant feature keeps a scale of 1, so it standardizes to 0 instead of dividing by 0.
    feature_scale[feature_scale == 0.0] = 1.0
    return feature_mean, feature_scale


@dataclass(frozen=True, eq=False)
class _TrainingBatches:
    """The standardized train rows and the seeded generator every training draw comes from."""

    standardized: torch.Tensor
    conditions: torch.Tensor
    row_weights: torch.Tensor
    batch_size: int
    latent_dim: int
    random: torch.Generator

    def draw(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Real rows (drawn by ``row_weights``), their conditions, and latent noise."""
        rows = torch.multinomial(
            self.row_weights, self.batch_size, replacement=True, generator=self.random
        )
        noise = torch.randn(self.batch_size, self.latent_dim, generator=self.random)
        return self.standardized[rows], self.conditions[rows], noise


@dataclass(frozen=True, eq=False)
class _Wgan:
    """The two networks being trained, their optimizers and the configuration."""

    generator: ConditionalGenerator
    critic: ConditionalCritic
    generator_optimizer: torch.optim.Adam
    critic_optimizer: torch.optim.Adam
    config: GanConfig


def _new_wgan(config: GanConfig, n_features: int, n_labels: int) -> _Wgan:
    """Seeded networks (``_initialized_networks``) with Adam optimizers of ``config``."""
    generator, critic = _initialized_networks(config, n_features, n_labels)
    critic_optimizer = torch.optim.Adam(
        critic.parameters(), lr=config.critic_lr, betas=config.adam_betas
    )
    generator_optimizer = torch.optim.Adam(
        generator.parameters(), lr=config.generator_lr, betas=config.adam_betas
    )
    return _Wgan(generator, critic, generator_optimizer, critic_optimizer, config)


def _train_epochs(
    wgan: _Wgan,
    batches: _TrainingBatches,
    steps_per_epoch: int,
    report: ProgressCallback,
    started: float,
) -> TrainingHistory:
    """Every epoch of ``wgan.config``, with its progress line every ``progress_every`` epochs;
    raises ``GanDivergedError`` at the first epoch whose mean losses are not finite."""
    config = wgan.config
    history: dict[str, list[float]] = {"critic": [], "generator": [], "wasserstein": []}
    for epoch in range(1, config.epochs + 1):
        epoch_losses = _train_epoch(wgan, batches, steps_per_epoch)
        # A NaN or inf in any step makes its epoch sum non-finite.
        if not all(math.isfinite(value) for value in epoch_losses.values()):
            raise GanDivergedError(epoch, epoch_losses)
        for name, value in epoch_losses.items():
            history[name].append(value)
        if epoch % config.progress_every == 0 or epoch == config.epochs:
            elapsed = time.perf_counter() - started
            report(
                f"epoch {epoch}/{config.epochs}: critic {epoch_losses['critic']:.4f} "
                f"generator {epoch_losses['generator']:.4f} "
                f"wasserstein {epoch_losses['wasserstein']:.4f} ({elapsed:.1f} s)"
            )
    return TrainingHistory(
        tuple(history["critic"]), tuple(history["generator"]), tuple(history["wasserstein"])
    )


def _train_epoch(wgan: _Wgan, batches: _TrainingBatches, steps_per_epoch: int) -> dict[str, float]:
    """One epoch: ``steps_per_epoch`` generator steps, each after ``n_critic`` critic steps;
    returns the epoch's mean critic loss, generator loss and Wasserstein estimate."""
    n_critic = wgan.config.n_critic
    critic_sum = generator_sum = wasserstein_sum = 0.0
    for _step in range(steps_per_epoch):
        wgan.critic.requires_grad_(True)
        for _ in range(n_critic):
            critic_loss, wasserstein = _critic_step(wgan, batches)
            critic_sum += critic_loss
            wasserstein_sum += wasserstein
        # The generator step needs gradients through the critic, not of its weights.
        wgan.critic.requires_grad_(False)
        generator_sum += _generator_step(wgan, batches)
    critic_steps = steps_per_epoch * n_critic
    return {
        "critic": critic_sum / critic_steps,
        "generator": generator_sum / steps_per_epoch,
        "wasserstein": wasserstein_sum / critic_steps,
    }


def _critic_step(wgan: _Wgan, batches: _TrainingBatches) -> tuple[float, float]:
    """One critic update; returns its loss (with the penalty) and its Wasserstein estimate."""
    real, condition, noise = batches.draw()
    with torch.no_grad():
        fake = wgan.generator(noise, condition)
    real_score = wgan.critic(real, condition).mean()
    fake_score = wgan.critic(fake, condition).mean()
    penalty = _gradient_penalty(wgan.critic, real, fake, condition, batches.random)
    critic_loss = fake_score - real_score + wgan.config.gp_weight * penalty
    wgan.critic_optimizer.zero_grad(set_to_none=True)
    critic_loss.backward()
    wgan.critic_optimizer.step()
    return critic_loss.item(), (real_score - fake_score).item()


def _generator_step(wgan: _Wgan, batches: _TrainingBatches) -> float:
    """One generator update; returns its loss ``-E[D(fake)]``."""
    _real, condition, noise = batches.draw()
    generator_loss = -wgan.critic(wgan.generator(noise, condition), condition).mean()
    wgan.generator_optimizer.zero_grad(set_to_none=True)
    generator_loss.backward()
    wgan.generator_optimizer.step()
    return generator_loss.item()


def _gradient_penalty(
    critic: ConditionalCritic,
    real: torch.Tensor,
    fake: torch.Tensor,
    condition: torch.Tensor,
    random: torch.Generator,
) -> torch.Tensor:
    """``E[(||grad_x D(x, c)|| - 1)^2]`` at random points between real and generated rows; the
    condition is not interpolated (both rows of a pair are drawn for the same condition)."""
    weight = torch.rand(real.shape[0], 1, generator=random)
    interpolate = (weight * real + (1.0 - weight) * fake).requires_grad_(True)
    score = critic(interpolate, condition)
    (gradient,) = torch.autograd.grad(score.sum(), interpolate, create_graph=True)
    return ((gradient.norm(2, dim=1) - 1.0) ** 2).mean()


def _row_weights(labels: np.ndarray, min_label_share: float) -> np.ndarray:
    """Sampling weight of each train row: ``max(1, max over its labels of
    min_label_share * n / count(label))``, so a label's rows together weigh about
    ``min_label_share * n`` at least. Approximate (a row counts for all its labels and the
    boosts grow the total weight), which is all the critic needs: to see rare labels often."""
    n_rows = labels.shape[0]
    weights = np.ones(n_rows, dtype=np.float64)
    if min_label_share == 0:
        return weights
    counts = labels.sum(axis=0).astype(np.float64)
    boost = np.where(counts > 0, min_label_share * n_rows / np.maximum(counts, 1.0), 0.0)
    carried = labels.astype(bool)
    per_row = np.where(carried, boost[None, :], 0.0).max(axis=1, initial=0.0)
    return np.maximum(weights, per_row)


# ---------------------------------------------------------------------------------------------
# Sampling


def synthesize(
    trained: TrainedGan,
    conditions: np.ndarray,
    *,
    seed: int,
    studies: np.ndarray | None = None,
) -> np.ndarray:
    """Rows generated for the label sets ``conditions`` (m x L, multi-hot) in the studies
    ``studies`` (m study ids the GAN was trained on; None only for a GAN of one study), as
    (m x d) float32 in the original feature scale. The same GAN, conditions, studies and seed
    give the same rows."""
    condition = _multi_hot(conditions)
    centroids = trained.study_centroids[_trained_study_codes(trained, studies, condition.shape[0])]
    if condition.shape[1] != trained.n_labels:
        raise ValueError(
            f"conditions have {condition.shape[1]} label columns, the GAN has {trained.n_labels}"
        )
    if condition.shape[0] == 0:
        return np.empty((0, trained.n_features), dtype=np.float32)
    with _deterministic_torch(trained.config.num_threads), torch.no_grad():
        random = torch.Generator().manual_seed(int(seed))
        trained.generator.eval()
        noise = torch.randn(condition.shape[0], trained.config.latent_dim, generator=random)
        standardized = trained.generator(noise, torch.from_numpy(condition.astype(np.float32)))
    deviations = standardized.numpy().astype(np.float64) * trained.feature_scale
    return (deviations + trained.feature_mean + centroids).astype(np.float32)


def _trained_study_codes(
    trained: TrainedGan, studies: np.ndarray | None, n_rows: int
) -> np.ndarray:
    """Each row's position among the GAN's studies; every study must be one it was trained on."""
    if studies is None:
        if trained.study_ids.size != 1:
            raise ValueError(
                f"this GAN was trained on {trained.study_ids.size} studies: pass each row's study"
            )
        return np.zeros(n_rows, dtype=np.int64)
    ids = np.asarray(studies).astype(np.int64)
    if ids.shape != (n_rows,):
        raise ValueError(f"{ids.shape} studies for {n_rows} rows")
    codes = np.searchsorted(trained.study_ids, ids)
    known = codes < trained.study_ids.size
    known[known] = trained.study_ids[codes[known]] == ids[known]
    if not known.all():
        raise ValueError(f"studies {sorted(set(ids[~known].tolist()))[:5]} are not the GAN's")
    return codes


def synthetic_rows_for(
    trained: TrainedGan,
    Y_train: np.ndarray,  # noqa: N803
    label_names: Sequence[str],
    rare: Sequence[str],
    per_label: int,
    *,
    seed: int,
    studies: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``per_label`` synthetic rows for each label of ``rare``.

    Each row is conditioned on the full label set and the study (``studies``, one per train
    row) of a real train row that carries the label, drawn uniformly with replacement
    (seeded), so co-occurring labels stay as they occur in the data and each row lies in a
    study the label occurs in. Returns ``(X_syn (m x d) float32, Y_syn (m x L) int8,
    label_of_row (m,) str)`` with the rows of each rare label together, in the order of
    ``rare``; ``label_of_row`` is the rare label a row was generated for (its label set may
    hold others).
    """
    labels = _multi_hot(Y_train)
    names = [str(name) for name in label_names]
    if len(names) != labels.shape[1]:
        raise ValueError(f"{len(names)} label names for {labels.shape[1]} label columns")
    if per_label < 0:
        raise ValueError(f"per_label must be >= 0, got {per_label}")
    random = np.random.default_rng(seed)
    chosen: list[np.ndarray] = []
    for name in rare:
        if name not in names:
            raise ValueError(f"{name!r} is not a label")
        carriers = np.flatnonzero(labels[:, names.index(name)])
        if carriers.size == 0:
            raise ValueError(f"no train row carries {name!r}: there is nothing to condition on")
        chosen.append(random.choice(carriers, size=per_label, replace=True))
    rows = np.concatenate(chosen) if chosen else np.empty(0, dtype=np.int64)
    synthetic_labels = labels[rows]
    synthetic_studies = None if studies is None else np.asarray(studies)[rows]
    synthetic = synthesize(trained, synthetic_labels, seed=seed, studies=synthetic_studies)
    label_of_row = np.repeat(np.array([str(name) for name in rare], dtype=object), per_label)
    return synthetic, synthetic_labels, label_of_row.astype(str)


# ---------------------------------------------------------------------------------------------
# Persistence


def save_gan(trained: TrainedGan, target: str | os.PathLike[str] | BinaryIO) -> None:
    """Store ``trained`` as ``torch.save`` of a dict of tensors (see the module docstring).

    ``target`` is a path (written under a temporary name, then renamed) or an open binary
    file such as a warehouse ``atomic_file``.
    """
    description = {
        "format_name": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "n_features": trained.n_features,
        "n_labels": trained.n_labels,
        "config": trained.config.to_json_dict(),
    }
    payload = {
        "description": _json_tensor(description),
        "generator": trained.generator.state_dict(),
        "critic": trained.critic.state_dict(),
        "feature_mean": torch.from_numpy(np.asarray(trained.feature_mean, dtype=np.float64)),
        "feature_scale": torch.from_numpy(np.asarray(trained.feature_scale, dtype=np.float64)),
        "study_ids": torch.from_numpy(np.asarray(trained.study_ids, dtype=np.int64)),
        "study_centroids": torch.from_numpy(np.asarray(trained.study_centroids, dtype=np.float64)),
        "history": torch.from_numpy(trained.history.as_array()),
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_payload(target, buffer.getvalue())


def _read_gan_payload(source: str | os.PathLike[str] | BinaryIO, name: str) -> tuple[dict, dict]:
    """The tensors-only payload of a GAN file and its description, or ``GanFileError``."""
    data = read_payload(source)
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise GanFileError(f"refusing to load {name}: {error}") from error
    except (RuntimeError, EOFError) as error:
        raise GanFileError(f"{name} is not a torch file: {error}") from error
    expected = {
        "description",
        "generator",
        "critic",
        "feature_mean",
        "feature_scale",
        "study_ids",
        "study_centroids",
        "history",
    }
    if not isinstance(payload, dict) or set(payload) != expected:
        keys = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
        raise GanFileError(f"{name} is not a GAN file: found {keys}")
    description = _from_json_tensor(payload["description"], name)
    if description.get("format_name") != FORMAT_NAME:
        raise GanFileError(f"{name} is not a GAN file")
    if description.get("format_version") != FORMAT_VERSION:
        raise GanFileError(
            f"{name}: GAN format {description.get('format_version')}, this code reads "
            f"{FORMAT_VERSION}"
        )
    return payload, description


def load_gan(source: str | os.PathLike[str] | BinaryIO) -> TrainedGan:
    """Load a GAN written by ``save_gan``.

    Reads with ``torch.load(weights_only=True)``: a file holding any pickled object other than
    tensors and plain containers is refused (``GanFileError``) before anything is constructed.
    """
    name = source_name(source)
    payload, description = _read_gan_payload(source, name)
    try:
        config = GanConfig.from_json_dict(description["config"])
        n_features, n_labels = int(description["n_features"]), int(description["n_labels"])
        generator = ConditionalGenerator(
            config.latent_dim, n_labels, config.generator_hidden, n_features
        )
        critic = ConditionalCritic(n_features, n_labels, config.critic_hidden)
        generator.load_state_dict(payload["generator"], strict=True)
        critic.load_state_dict(payload["critic"], strict=True)
        study_ids = payload["study_ids"].numpy().astype(np.int64)
        study_centroids = payload["study_centroids"].numpy().astype(np.float64)
        if study_centroids.shape != (study_ids.size, n_features):
            raise ValueError(f"{study_centroids.shape} centroids for {study_ids.size} studies")
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        # RuntimeError: weights whose names or shapes do not match the configuration.
        raise GanFileError(f"{name}: inconsistent GAN file: {error}") from error
    generator.eval()
    critic.eval()
    return TrainedGan(
        generator=generator,
        critic=critic,
        feature_mean=payload["feature_mean"].numpy().astype(np.float64),
        feature_scale=payload["feature_scale"].numpy().astype(np.float64),
        study_ids=study_ids,
        study_centroids=study_centroids,
        n_labels=n_labels,
        config=config,
        history=TrainingHistory.from_array(payload["history"].numpy()),
    )


# ---------------------------------------------------------------------------------------------
# Helpers


def _mlp(n_in: int, hidden: Sequence[int], n_out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = n_in
    for size in hidden:
        layers += [nn.Linear(width, int(size)), nn.LeakyReLU(0.2)]
        width = int(size)
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


def _initialized_networks(
    config: GanConfig, n_features: int, n_labels: int
) -> tuple[ConditionalGenerator, ConditionalCritic]:
    """Both networks with weights drawn from the global RNG seeded with ``config.seed``; the
    fork restores the caller's global RNG state afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        generator = ConditionalGenerator(
            config.latent_dim, n_labels, config.generator_hidden, n_features
        )
        critic = ConditionalCritic(n_features, n_labels, config.critic_hidden)
    return generator, critic


@contextmanager
def _deterministic_torch(num_threads: int) -> Iterator[None]:
    """Deterministic kernels and a fixed thread count, restored on exit."""
    previous_threads = torch.get_num_threads()
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    previous_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(num_threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous_deterministic, warn_only=previous_warn_only)
        torch.set_num_threads(previous_threads)


def _multi_hot(labels: np.ndarray) -> np.ndarray:
    matrix = np.asarray(labels)
    if matrix.ndim != 2:
        raise ValueError(f"expected a multi-hot (n, L) matrix, got shape {matrix.shape}")
    if not np.isin(matrix, (0, 1)).all():
        raise ValueError("label matrix must contain only 0 and 1")
    return matrix.astype(np.int8)


def _json_tensor(value: dict[str, Any]) -> torch.Tensor:
    encoded = json.dumps(value, sort_keys=True).encode("utf-8")
    return torch.tensor(list(encoded), dtype=torch.uint8)


def _from_json_tensor(tensor: object, name: str) -> dict[str, Any]:
    if not isinstance(tensor, torch.Tensor) or tensor.dtype != torch.uint8 or tensor.ndim != 1:
        raise GanFileError(f"{name}: the description is not a byte tensor")
    try:
        value = json.loads(bytes(tensor.tolist()).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise GanFileError(f"{name}: unreadable description: {error}") from error
    if not isinstance(value, dict):
        raise GanFileError(f"{name}: the description is not a JSON object")
    return value
