"""Multi-label tissue / cell-line classifier: Random Forest, per-label thresholds, evaluation,
the original work's baseline and safe persistence.

What it computes.

- ``train_random_forest``: one scikit-learn multi-output ``RandomForestClassifier`` on a
  multi-hot label matrix Y (n samples x L labels), trained in a few warm-start stages so a
  Dagster run can log progress; the staged forest is the same as one fitted in a single call
  with the same seed (sklearn re-derives each tree's seed from ``random_state``).
- ``label_probabilities``: P (n x L), the forest's probability of the positive class of each
  label. A label that is constant in the train split gets the constant 0 or 1.
- ``tune_thresholds``: per label, the threshold of a grid that maximizes F1 on the VALIDATION
  split. Frequencies differ by orders of magnitude between labels, so one global 0.5 is far
  from optimal for rare ones; tuning on validation keeps test untouched.
- Decision rule, everywhere: a label is predicted when ``probability > threshold``
  (``predict_labels``). Strictly greater because that is what sklearn's ``predict`` does at 0.5
  (argmax breaks the 0.5 tie towards the first class, the negative one), so the baseline at 0.5
  reproduces the original work's predictions exactly, ties included (with 10 trees a 5/5 vote
  is common).
- ``evaluate``: long rows ``(model, label, metric, value)`` for the ``model_evaluation`` view,
  with sklearn.metrics and ``zero_division=0``. ``label = 'ALL'``: ``f1_samples``, ``f1_micro``,
  ``f1_macro``, ``hamming_loss`` and ``n_samples``; per label: ``precision``, ``recall``, ``f1``,
  ``average_precision``, ``support`` (positives in the evaluated rows) and ``threshold``.
  ``average_precision`` is NaN for a label without a positive in the evaluated rows: it is
  undefined there, and a 0 would read as "the model ranks badly". ``f1_macro`` counts such a
  label as F1 = 0 (sklearn's convention with ``zero_division=0``), so read it beside the
  per-label ``support``.
- ``baseline_original``: the original configuration, Random Forest with 10 trees on all genes,
  a random per-sample 67/33 split, thresholds at 0.5. Samples of one study land on both sides of
  such a split, which is why its scores are optimistic next to the study-wise split; it is
  reported beside ours as ``model = 'baseline_original'`` (``evaluate_model_on_rows`` evaluates
  any fitted model on any rows, so both can also be compared on the same test rows).

Safe persistence. Models are stored with skops, never pickle. ``load_model`` reads the file
once into memory (so the bytes checked are the bytes loaded) and refuses it with
``UnsafeModelError`` unless (1) every type and node kind the file declares is on an explicit
allow-list of the types a fitted forest is made of, and the root is a
``RandomForestClassifier``, and (2) every type skops itself would not trust
(``skops.io.get_untrusted_types``) is on that allow-list too. Only then is it loaded, with
exactly that list as ``trusted``. Check (1) is stricter than skops' defaults on purpose: skops
trusts every sklearn estimator and many numpy functions by default, so a file holding, say, a
``Pipeline`` with a ``FunctionTransformer`` would otherwise load without a word.
"""

# The public signatures keep the usual matrix names (X features, Y labels, P probabilities).
# ruff: noqa: N803

from __future__ import annotations

import io
import json
import math
import os
import time
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any, BinaryIO, NamedTuple

import numpy as np
import polars as pl
import sklearn
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import (
    average_precision_score,
    f1_score,
    hamming_loss,
    precision_recall_fscore_support,
)
from sklearn.model_selection import train_test_split

from archs4.datasets import classifier_files
from archs4.features import FeatureSpace, read_payload, source_name, write_payload
from archs4.warehouse import Warehouse

ALL_LABELS = "ALL"
BASELINE_MODEL_NAME = "baseline_original"
BASELINE_N_ESTIMATORS = 10
BASELINE_TEST_FRACTION = 0.33
BASELINE_THRESHOLD = 0.5
# Grid thresholds are rounded to this many decimals: np.linspace gives 0.49999999999999994
# for "0.5", which with the strict '>' rule would turn a probability of exactly 0.5 positive.
_THRESHOLD_DECIMALS = 10
DEFAULT_THRESHOLD_GRID = np.round(np.linspace(0.05, 0.95, 19), _THRESHOLD_DECIMALS)

# Warm-start stages of train_random_forest; one progress message per stage.
_TRAINING_STAGES = 4
# |threshold - 0.5| is rounded before breaking ties, so 0.45 and 0.55 count as equally close.
_DISTANCE_DECIMALS = 9

# The metrics DESIGN.md requires of model_evaluation (evaluate also writes n_samples, support
# and threshold), for asset checks and readers that want to test for them.
OVERALL_METRICS = ("f1_samples", "f1_micro", "f1_macro", "hamming_loss")
PER_LABEL_METRICS = ("precision", "recall", "f1", "average_precision")

# Every type a skops file of a fitted RandomForestClassifier may name, as "module.qualname".
# Anything else (another estimator, a function, a user class) makes load_model refuse the file.
_NUMPY_SCALAR_TYPES = (
    "bool",
    "bool_",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
)
ALLOWED_MODEL_TYPES: frozenset[str] = frozenset(
    {
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._tree.Tree",
        "numpy.ndarray",
        "numpy.dtype",
        "numpy.random.mtrand.RandomState",
        "builtins.dict",
        "builtins.list",
        "builtins.tuple",
        "builtins.str",
        "builtins.int",
        "builtins.float",
        "builtins.bool",
        "builtins.NoneType",
        *(f"numpy.{name}" for name in _NUMPY_SCALAR_TYPES),
    }
)
# The skops node kinds those types are stored as (skops' "__loader__"): none of them calls a
# function or a __reduce__ recipe.
_ALLOWED_NODE_KINDS = frozenset(
    {
        "ObjectNode",
        "DictNode",
        "ListNode",
        "TupleNode",
        "JsonNode",
        "TypeNode",
        "NdArrayNode",
        "TreeNode",
        "RandomStateNode",
    }
)
_MODEL_TYPE = "sklearn.ensemble._forest.RandomForestClassifier"

ProgressCallback = Callable[[str], None]


class UnsafeModelError(Exception):
    """A model file names a type (or node kind) outside the allow-list; it was not loaded."""

    def __init__(self, path: str, type_name: str, reason: str) -> None:
        super().__init__(f"refusing to load model file {path}: {reason} ({type_name!r})")
        self.path = path
        self.type_name = type_name


# ---------------------------------------------------------------------------------------------
# Training and prediction


def train_random_forest(
    X_train: np.ndarray,
    Y_train: np.ndarray,
    *,
    n_estimators: int = 300,
    class_weight: str | None = "balanced_subsample",
    seed: int = 0,
    n_jobs: int = 2,
    progress: ProgressCallback | None = None,
) -> RandomForestClassifier:
    """Fit a multi-output Random Forest on features X (n x p) and multi-hot Y (n x L).

    ``class_weight="balanced_subsample"`` reweights each tree's bootstrap sample so rare labels
    are not drowned by the negatives. Trees are added in ``_TRAINING_STAGES`` warm-start
    stages; ``progress`` receives one line per stage.
    """
    features = _as_features(X_train)
    labels = as_multi_hot(Y_train)
    _check_same_rows(features, labels)
    if n_estimators < 1:
        raise ValueError(f"n_estimators must be positive, got {n_estimators}")
    report = progress or (lambda _message: None)
    model = RandomForestClassifier(
        n_estimators=n_estimators,
        class_weight=class_weight,
        random_state=seed,
        n_jobs=n_jobs,
        warm_start=True,
    )
    n_samples, n_features = features.shape
    report(
        f"random forest: fitting {n_estimators} trees on {n_samples} samples x "
        f"{n_features} features, {labels.shape[1]} labels"
    )
    started = time.perf_counter()
    for trees_so_far in _stage_totals(n_estimators, _TRAINING_STAGES):
        model.set_params(n_estimators=trees_so_far)
        with warnings.catch_warnings():
            # sklearn warns that balanced class weights are computed per fit call; every stage
            # fits the same rows, so the weights are those of a single fit.
            warnings.filterwarnings(
                "ignore", message='class_weight presets "balanced"', category=UserWarning
            )
            model.fit(features, _fit_target(labels))
        elapsed = time.perf_counter() - started
        report(f"random forest: {trees_so_far}/{n_estimators} trees fitted ({elapsed:.1f} s)")
    # The stored model is an ordinary forest; a later fit() must not silently add trees.
    model.set_params(warm_start=False)
    return model


def label_probabilities(model: RandomForestClassifier, X: np.ndarray) -> np.ndarray:
    """P (n x L), float64: the probability of the positive class of each label.

    sklearn returns one (n x n_classes) array per label; a label whose train column was
    constant has a single class, hence a single column: its probability is 1 if that class is
    the positive one and 0 otherwise.
    """
    probabilities = model.predict_proba(_as_features(X))
    classes = model.classes_
    if model.n_outputs_ == 1:
        probabilities, classes = [probabilities], [classes]
    n_rows = probabilities[0].shape[0]
    positive_probability = np.zeros((n_rows, len(probabilities)), dtype=np.float64)
    for label, (label_proba, label_classes) in enumerate(zip(probabilities, classes, strict=True)):
        positive = np.flatnonzero(np.asarray(label_classes) == 1)
        if positive.size:
            positive_probability[:, label] = label_proba[:, positive[0]]
    return positive_probability


def predict_labels(probabilities: np.ndarray, thresholds: np.ndarray | float) -> np.ndarray:
    """Multi-hot predictions (bool, n x L): ``probability > threshold`` per label."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    return probabilities > _thresholds_for(probabilities, thresholds)


def tune_thresholds(
    P_val: np.ndarray,
    Y_val: np.ndarray,
    *,
    grid: np.ndarray = DEFAULT_THRESHOLD_GRID,
    default: float = 0.5,
) -> np.ndarray:
    """Per label, the grid threshold maximizing F1 on the validation rows, shape (L,).

    Ties go to the threshold closest to 0.5 (the lower one when two are equally close): a
    plateau of equal F1 says nothing about where in it the boundary belongs, and 0.5 is the
    uninformed choice. A label without a positive in validation keeps ``default``. The grid is
    rounded to 10 decimals so its thresholds are the decimal values they are meant to be.
    """
    probabilities = np.asarray(P_val, dtype=np.float64)
    truth_matrix = as_multi_hot(Y_val).astype(bool)
    if probabilities.shape != truth_matrix.shape:
        raise ValueError(
            f"P_val has shape {probabilities.shape} but Y_val has {truth_matrix.shape}"
        )
    candidates = np.round(np.asarray(grid, dtype=np.float64), _THRESHOLD_DECIMALS)
    if candidates.ndim != 1 or candidates.size == 0:
        raise ValueError("grid must be a non-empty 1-D array of thresholds")
    distance_to_half = np.round(np.abs(candidates - 0.5), _DISTANCE_DECIMALS)
    thresholds = np.full(truth_matrix.shape[1], float(default), dtype=np.float64)
    for label in range(truth_matrix.shape[1]):
        truth = truth_matrix[:, label]
        n_positive = int(truth.sum())
        if n_positive == 0:
            continue
        predicted = probabilities[:, label, None] > candidates[None, :]
        true_positives = (predicted & truth[:, None]).sum(axis=0)
        false_positives = predicted.sum(axis=0) - true_positives
        false_negatives = n_positive - true_positives
        # The denominator is at least n_positive > 0. Equal ratios of integers give equal
        # floats (division is correctly rounded), so '==' finds every tie.
        f1 = 2 * true_positives / (2 * true_positives + false_positives + false_negatives)
        best = np.flatnonzero(f1 == f1.max())
        closest_first = best[np.lexsort((candidates[best], distance_to_half[best]))]
        thresholds[label] = candidates[closest_first[0]]
    return thresholds


# ---------------------------------------------------------------------------------------------
# Evaluation


def evaluate(
    Y_true: np.ndarray,
    P: np.ndarray,
    thresholds: np.ndarray | float,
    label_names: Sequence[str],
    model_name: str,
) -> pl.DataFrame:
    """Long rows ``(model, label, metric, value)`` of ``model`` on the rows given.

    See the module docstring for the metrics; predictions are ``P > thresholds``.
    """
    truth = as_multi_hot(Y_true)
    probabilities = np.asarray(P, dtype=np.float64)
    if probabilities.shape != truth.shape:
        raise ValueError(f"P has shape {probabilities.shape} but Y_true has {truth.shape}")
    labels = [str(name) for name in label_names]
    if len(labels) != truth.shape[1]:
        raise ValueError(f"{len(labels)} label names for {truth.shape[1]} label columns")
    per_label_thresholds = _thresholds_for(probabilities, thresholds)
    predicted = predict_labels(probabilities, per_label_thresholds).astype(np.int8)

    rows: list[tuple[str, str, str, float]] = []
    for metric, value in _overall_metrics(truth, predicted).items():
        rows.append((model_name, ALL_LABELS, metric, value))
    rows.append((model_name, ALL_LABELS, "n_samples", float(truth.shape[0])))

    precision, recall, f1, support = _per_label_prf(truth, predicted)
    for label, name in enumerate(labels):
        average_precision = (
            float(average_precision_score(truth[:, label], probabilities[:, label]))
            if support[label] > 0
            else math.nan  # undefined without a positive, see the module docstring
        )
        values = {
            "precision": precision[label],
            "recall": recall[label],
            "f1": f1[label],
            "average_precision": average_precision,
            "support": support[label],
            "threshold": per_label_thresholds[label],
        }
        rows.extend((model_name, name, metric, float(value)) for metric, value in values.items())
    return pl.DataFrame(
        rows,
        schema={"model": pl.Utf8, "label": pl.Utf8, "metric": pl.Utf8, "value": pl.Float64},
        orient="row",
    )


def evaluate_model_on_rows(
    model: RandomForestClassifier,
    X: np.ndarray,
    Y: np.ndarray,
    rows: np.ndarray,
    *,
    label_names: Sequence[str],
    model_name: str,
    thresholds: np.ndarray | float = BASELINE_THRESHOLD,
) -> pl.DataFrame:
    """``evaluate`` of a fitted ``model`` on ``rows`` of (X, Y), so two models with different
    features (ours on PCs, the baseline on all genes) can be scored on the same samples."""
    rows = np.asarray(rows, dtype=np.int64)
    probabilities = label_probabilities(model, np.asarray(X)[rows])
    return evaluate(np.asarray(Y)[rows], probabilities, thresholds, label_names, model_name)


def fit_original_configuration(
    X_all_genes: np.ndarray, Y: np.ndarray, *, seed: int = 0, n_jobs: int = 2
) -> RandomForestClassifier:
    """The original work's model on the rows given: a Random Forest with 10 trees, other
    parameters at sklearn's defaults (decisions at threshold 0.5 when evaluated)."""
    features = _as_features(X_all_genes)
    labels = as_multi_hot(Y)
    _check_same_rows(features, labels)
    model = RandomForestClassifier(
        n_estimators=BASELINE_N_ESTIMATORS, random_state=seed, n_jobs=n_jobs
    )
    model.fit(features, _fit_target(labels))
    return model


def baseline_original(
    X_all_genes: np.ndarray, Y: np.ndarray, *, seed: int = 0, n_jobs: int = 2
) -> tuple[RandomForestClassifier, np.ndarray]:
    """The original work's configuration end to end: `fit_original_configuration` on all
    genes, trained on a random per-sample 67% of the rows (``train_test_split(test_size=0.33)``,
    seeded). Returns the model and the held-out 33% row indices (sorted); evaluate it there at
    threshold 0.5 (``evaluate_model_on_rows``)."""
    train_rows, test_rows = train_test_split(
        np.arange(np.asarray(X_all_genes).shape[0]),
        test_size=BASELINE_TEST_FRACTION,
        random_state=seed,
    )
    model = fit_original_configuration(
        np.asarray(X_all_genes)[train_rows], np.asarray(Y)[train_rows], seed=seed, n_jobs=n_jobs
    )
    return model, np.sort(test_rows).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Persistence


def save_model(model: RandomForestClassifier, target: str | os.PathLike[str] | BinaryIO) -> None:
    """Store ``model`` with skops (zip of JSON and .npy arrays; no pickle).

    ``target`` is a path (written under a temporary name, then renamed) or an open binary
    file such as a warehouse ``atomic_file``.
    """
    if not isinstance(model, RandomForestClassifier):
        raise TypeError(f"expected a RandomForestClassifier, got {type(model).__name__}")
    import skops.io  # ~7 s to import (it loads sklearn's array-API layer); only when saving

    payload = skops.io.dumps(model, compression=zipfile.ZIP_DEFLATED)
    write_payload(target, _reproducible_archive(payload))


def _reproducible_archive(archive: bytes) -> bytes:
    """The same skops zip with object ids numbered in order of appearance, the padding of
    structured arrays zeroed and every entry dated 1980-01-01, so one model always gives one
    file: skops names objects and array files by ``id()``, a memory address that changes from
    run to run, a tree's node records carry 7 uninitialized bytes each, and zip entries carry
    the time they were written."""
    with zipfile.ZipFile(io.BytesIO(archive)) as source:
        entries = source.infolist()
        members = {entry.filename: source.read(entry.filename) for entry in entries}
    numbering: dict[int, int] = {}
    schema = _renumbered(json.loads(members["schema.json"]), numbering)
    renamed = {f"{old}.npy": f"{new}.npy" for old, new in numbering.items()}
    members["schema.json"] = json.dumps(schema, indent=2).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for entry in entries:
            name = renamed.get(entry.filename, entry.filename)
            fixed = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type = entry.compress_type
            fixed.external_attr = entry.external_attr
            data = members[entry.filename]
            target.writestr(fixed, _zeroed_padding(data) if name.endswith(".npy") else data)
    return out.getvalue()


def _zeroed_padding(npy: bytes) -> bytes:
    """An .npy file's bytes with the gaps between a structured array's fields set to zero."""
    array = np.load(io.BytesIO(npy), allow_pickle=False)
    fields = array.dtype.fields
    if not fields or sum(dtype.itemsize for dtype, *_ in fields.values()) == array.itemsize:
        return npy
    zeroed = np.zeros(array.shape, array.dtype)
    for name in fields:
        zeroed[name] = array[name]
    out = io.BytesIO()
    np.save(out, zeroed, allow_pickle=False)
    return out.getvalue()


def _renumbered(node: Any, numbering: dict[int, int]) -> Any:
    """``node`` (a skops schema) with each ``__id__`` and ``<id>.npy`` file name replaced by
    its number in ``numbering``, which gives ids their order of first appearance; one id keeps
    one number, so objects skops stored once and referenced twice stay shared."""
    if isinstance(node, list):
        return [_renumbered(item, numbering) for item in node]
    if not isinstance(node, dict):
        return node
    renumbered = {}
    for key, value in node.items():
        if key == "__id__" and isinstance(value, int):
            renumbered[key] = numbering.setdefault(value, len(numbering))
        elif key == "file" and isinstance(value, str) and value.removesuffix(".npy").isdigit():
            number = numbering.setdefault(int(value.removesuffix(".npy")), len(numbering))
            renumbered[key] = f"{number}.npy"
        else:
            renumbered[key] = _renumbered(value, numbering)
    return renumbered


def load_model(source: str | os.PathLike[str] | BinaryIO) -> RandomForestClassifier:
    """Load a forest stored by ``save_model``, refusing any file that names a type outside
    ``ALLOWED_MODEL_TYPES`` (``UnsafeModelError``, raised before anything is constructed)."""
    name = source_name(source)
    payload = read_payload(source)
    _check_declared_types(payload, name)
    import skops.io  # imported here for the same reason as in save_model

    untrusted = skops.io.get_untrusted_types(data=payload)
    for type_name in untrusted:
        if type_name not in ALLOWED_MODEL_TYPES:
            raise UnsafeModelError(name, type_name, "type not on the model allow-list")
    model = skops.io.loads(payload, trusted=untrusted)
    if not isinstance(model, RandomForestClassifier):  # the root was checked; belt and braces
        raise UnsafeModelError(name, type(model).__qualname__, "not a RandomForestClassifier")
    return model


def _check_declared_types(payload: bytes, name: str) -> None:
    """Every node of the skops schema must have an allowed type and node kind, and the root
    must be a RandomForestClassifier. Reads JSON only; nothing is imported or constructed."""
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            schema = json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as error:
        raise ValueError(f"{name} is not a skops model file: {error}") from error
    root_type = _node_type(schema)
    if root_type != _MODEL_TYPE:
        raise UnsafeModelError(name, str(root_type), "the file does not hold a forest")
    pending: list[Any] = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            type_name = _node_type(node)
            if type_name is not None:
                if type_name not in ALLOWED_MODEL_TYPES:
                    raise UnsafeModelError(name, type_name, "type not on the model allow-list")
                kind = node.get("__loader__")
                if kind not in _ALLOWED_NODE_KINDS:
                    raise UnsafeModelError(name, f"{type_name} as {kind}", "node kind not allowed")
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)


def _node_type(node: Any) -> str | None:
    """``module.class`` of a skops schema node, None for anything that is not a node."""
    if not isinstance(node, dict):
        return None
    module, cls = node.get("__module__"), node.get("__class__")
    if isinstance(module, str) and isinstance(cls, str):
        return f"{module}.{cls}"
    return None


# ---------------------------------------------------------------------------------------------
# Stored classifiers: `model/<name>.skops` beside `model/<name>.json` (labels, thresholds, seed)


class StoredClassifier(NamedTuple):
    """A forest with its label names and per-label decision thresholds."""

    model: RandomForestClassifier
    label_names: list[str]
    thresholds: np.ndarray


def fit_tune_and_save(
    warehouse: Warehouse,
    name: str,
    *,
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    label_names: Sequence[str],
    n_estimators: int,
    seed: int,
    progress: ProgressCallback | None = None,
) -> tuple[StoredClassifier, np.ndarray]:
    """Fit the forest on `train` (features, multi-hot labels), tune its thresholds on
    `validation`, and store it as the classifier `name`: the skops file, then its info JSON.
    Returns it and its validation probabilities (so a caller evaluates without predicting
    again)."""
    model = train_random_forest(*train, n_estimators=n_estimators, seed=seed, progress=progress)
    validation_features, validation_labels = validation
    probabilities = label_probabilities(model, validation_features)
    thresholds = tune_thresholds(probabilities, validation_labels)
    model_file, info_file = classifier_files(name)
    with warehouse.atomic_file(warehouse.root / model_file) as handle:
        save_model(model, handle)
    names = list(label_names)
    info = {"labels": names, "thresholds": thresholds.tolist(), "seed": seed}
    warehouse.write_json(info, warehouse.root / info_file)
    return StoredClassifier(model, names, thresholds), probabilities


def load_classifier(warehouse: Warehouse, name: str) -> StoredClassifier:
    """The stored classifier `name`, its forest loaded behind the skops allow-list."""
    model_file, info_file = classifier_files(name)
    with warehouse.fs.open((warehouse.root / model_file).path, "rb") as handle:
        model = load_model(handle)
    info = warehouse.read_json(warehouse.root / info_file)
    return StoredClassifier(model, info["labels"], np.array(info["thresholds"]))


# ---------------------------------------------------------------------------------------------
# Model card


def model_card(
    *,
    model_name: str,
    model: RandomForestClassifier,
    label_names: Sequence[str],
    thresholds: np.ndarray | float,
    evaluation: pl.DataFrame,
    data_version: str,
    feature_space: FeatureSpace | None = None,
    split_sizes: Mapping[str, int] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A plain, JSON-ready dict describing a fitted model for asset metadata: data version,
    feature space, parameters, thresholds and the test metrics of ``model_name`` found in
    ``evaluation`` (NaN becomes None, since JSON has no NaN)."""
    labels = [str(name) for name in label_names]
    per_label_thresholds = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (len(labels),))
    parameter_names = (
        "n_estimators",
        "class_weight",
        "max_features",
        "max_depth",
        "min_samples_leaf",
        "bootstrap",
        "criterion",
        "random_state",
    )
    parameters = model.get_params()
    own_rows = evaluation.filter(pl.col("model") == model_name)
    overall = {
        row["metric"]: _json_number(row["value"])
        for row in own_rows.filter(pl.col("label") == ALL_LABELS).iter_rows(named=True)
    }
    per_label: dict[str, dict[str, float | None]] = {}
    for row in own_rows.filter(pl.col("label") != ALL_LABELS).iter_rows(named=True):
        per_label.setdefault(row["label"], {})[row["metric"]] = _json_number(row["value"])
    card: dict[str, Any] = {
        "model": model_name,
        "estimator": f"{type(model).__module__}.{type(model).__qualname__}",
        "sklearn_version": sklearn.__version__,
        "data_version": data_version,
        "feature_space": feature_space.describe() if feature_space is not None else None,
        "n_features": int(getattr(model, "n_features_in_", 0)),
        "parameters": {key: _json_value(parameters[key]) for key in parameter_names},
        "labels": labels,
        "decision_rule": "predicted = probability > threshold",
        "thresholds": {
            label: round(float(value), 6)
            for label, value in zip(labels, per_label_thresholds, strict=True)
        },
        "split_sizes": dict(split_sizes) if split_sizes is not None else None,
        "test_metrics": {"overall": overall, "per_label": per_label},
        "notes": "average_precision is null for labels without a positive in the test rows",
    }
    if extra:
        card.update({key: _json_value(value) for key, value in extra.items()})
    return card


# ---------------------------------------------------------------------------------------------
# Helpers


def as_multi_hot(Y: np.ndarray) -> np.ndarray:
    """Y as an int8 (n x L) matrix of 0/1; a 1-D vector is one label."""
    labels = np.asarray(Y)
    if labels.ndim == 1:
        labels = labels[:, None]
    if labels.ndim != 2:
        raise ValueError(f"expected a multi-hot (n_samples, n_labels) matrix, got {labels.shape}")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("label matrix must contain only 0 and 1")
    return labels.astype(np.int8)


def _as_features(X: np.ndarray) -> np.ndarray:
    features = np.asarray(X)
    if features.ndim != 2:
        raise ValueError(f"expected a (n_samples, n_features) matrix, got {features.shape}")
    # Trees split on float32 anyway; converting once avoids a float64 copy inside sklearn.
    return features.astype(np.float32, copy=False)


def _check_same_rows(features: np.ndarray, labels: np.ndarray) -> None:
    if features.shape[0] != labels.shape[0]:
        raise ValueError(f"{features.shape[0]} feature rows but {labels.shape[0]} label rows")


def _fit_target(labels: np.ndarray) -> np.ndarray:
    """sklearn warns on a (n, 1) target and wants a vector for a single label."""
    return labels[:, 0] if labels.shape[1] == 1 else labels


def _stage_totals(n_estimators: int, n_stages: int) -> list[int]:
    """Cumulative tree counts of the warm-start stages, e.g. 300 in 4 -> [75, 150, 225, 300]."""
    totals = {math.ceil(n_estimators * stage / n_stages) for stage in range(1, n_stages + 1)}
    return sorted(total for total in totals if total > 0)


def _thresholds_for(probabilities: np.ndarray, thresholds: np.ndarray | float) -> np.ndarray:
    n_labels = probabilities.shape[1] if probabilities.ndim == 2 else 1
    values = np.asarray(thresholds, dtype=np.float64)
    if values.ndim == 0:
        return np.full(n_labels, float(values))
    if values.shape != (n_labels,):
        raise ValueError(f"expected one threshold per label ({n_labels}), got {values.shape}")
    return values


def _overall_metrics(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    if truth.shape[1] > 1:
        return {
            "f1_samples": float(f1_score(truth, predicted, average="samples", zero_division=0)),
            "f1_micro": float(f1_score(truth, predicted, average="micro", zero_division=0)),
            "f1_macro": float(f1_score(truth, predicted, average="macro", zero_division=0)),
            "hamming_loss": float(hamming_loss(truth, predicted)),
        }
    # sklearn reads an (n, 1) indicator as a binary target, where 'micro' would average over
    # both classes and 'samples' is refused; with one label, micro = macro = that label's F1,
    # and a sample's F1 is 1 when truth and prediction are both positive, else 0.
    label_truth, guess = truth[:, 0], predicted[:, 0]
    label_f1 = float(f1_score(label_truth, guess, average="binary", zero_division=0))
    return {
        "f1_samples": float(np.mean((label_truth == 1) & (guess == 1))),
        "f1_micro": label_f1,
        "f1_macro": label_f1,
        "hamming_loss": float(hamming_loss(label_truth, guess)),
    }


def _per_label_prf(
    truth: np.ndarray, predicted: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-label precision, recall, F1 and support (positives), each of shape (L,)."""
    if truth.shape[1] > 1:
        return precision_recall_fscore_support(truth, predicted, average=None, zero_division=0)
    # An (n, 1) indicator reads as a binary target: ask for the positive class explicitly.
    precision, recall, f1, _ = precision_recall_fscore_support(
        truth[:, 0], predicted[:, 0], average="binary", zero_division=0
    )
    support = np.array([int(truth[:, 0].sum())])
    return np.array([precision]), np.array([recall]), np.array([f1]), support


def _json_number(value: float | None) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, str | bool | int | float) or value is None:
        return _json_number(value) if isinstance(value, float) else value
    if isinstance(value, np.generic):
        return _json_value(value.item())
    if isinstance(value, Mapping):
        return {str(key): _json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    return repr(value)
