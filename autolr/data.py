"""Turn what the user gave into tensors, split once, and batch them by index slicing.

Accepted: `(X, y)` (numpy arrays or tensors; split once, seeded, stratified for
classification with one label a row; integer y may also hold one label a position),
`((X_train, y_train), (X_val, y_val))` used as given, a map-style
`torch.utils.data.Dataset` of `(x, y)` pairs (split like `(X, y)`), or a pair of them.
Datasets are read once into memory: every trial then batches tensors without a
DataLoader. The user's arrays are never written to.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import numbers
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from autolr.errors import InvalidDataError

logger = logging.getLogger("autolr")
CLASSIFICATION = "classification"
REGRESSION = "regression"
#: a per-position label that counts for nothing (padding), as cross-entropy's ignore_index
IGNORED_LABEL = -100
#: a training set of narrow rows up to this size is shuffled with one copy an epoch (the
#: faster way for rows of up to about 1 KiB: 15 vs 21 us a batch on digits, 13 vs 21 on
#: 100k rows of 20 features); wider rows (3 KiB: 80 vs 55 us) or more data, a gather per
#: batch, which never holds the data twice (`python -m benchmarks.batching`)
WHOLE_EPOCH_GATHER_BYTES = 64 * 2**20
WHOLE_EPOCH_GATHER_ROW_BYTES = 1024


@dataclass(frozen=True)
class TrainValData:
    """Train and validation tensors, with the task they define."""

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    task: str
    n_classes: int | None = None

    @property
    def n_train(self) -> int:
        return len(self.X_train)

    def digest(self) -> str:
        """A short digest of the four tensors (their values, dtypes and shapes): a resumed
        sweep tells other data of the same size apart by it."""
        digest = hashlib.sha256()
        for tensor in (self.X_train, self.y_train, self.X_val, self.y_val):
            digest.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    def to(self, device: str | torch.device) -> TrainValData:
        return TrainValData(self.X_train.to(device), self.y_train.to(device),
                            self.X_val.to(device), self.y_val.to(device),
                            self.task, self.n_classes)


def coerce_data(data: Any, *, val_fraction: float = 0.2, seed: int = 0) -> TrainValData:
    """Validate `data` and return it as a `TrainValData`.

    >>> import numpy as np
    >>> X, y = np.random.rand(100, 4), np.arange(100) % 3
    >>> d = coerce_data((X, y))
    >>> d.task, d.n_classes, d.n_train, len(d.X_val)
    ('classification', 3, 80, 20)
    """
    if not (isinstance(val_fraction, numbers.Real) and 0.0 < val_fraction < 1.0):
        raise InvalidDataError(
            f"val_fraction must be in (0, 1), such as 0.2, but got {val_fraction=}."
        )
    if _is_dataset(data):
        with _seeded(seed):
            X, y = _read_dataset(data, "data")
        return _split(X, y, val_fraction, seed)
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        loader = isinstance(data, torch.utils.data.DataLoader)
        raise InvalidDataError(
            "data must be (X, y), ((X_train, y_train), (X_val, y_val)), a torch Dataset of "
            f"(x, y) pairs, or a pair of Datasets, but got {type(data).__name__}"
            + ("; pass its Dataset (loader.dataset): autolr batches each trial at its own "
               "batch size." if loader else ".")
        )
    first, second = data
    if _is_dataset(first) and _is_dataset(second):
        with _seeded(seed):
            train, val = _read_dataset(first, "train"), _read_dataset(second, "validation")
        return _build(*train, *val)
    if _is_pair(first) and _is_pair(second):
        return _build(*_tensors(*first, "train"), *_tensors(*second, "validation"))
    if isinstance(first, tuple) and isinstance(second, tuple):  # meant as a pair, surely
        raise InvalidDataError(
            "a train/validation pair must be ((X_train, y_train), (X_val, y_val)), "
            f"but got parts of lengths {len(first)} and {len(second)}."
        )
    if _is_dataset(first) or _is_dataset(second):  # read as (X, y), it said "X must be an
        # array, but got MyDataset"
        kinds = ["a Dataset" if _is_dataset(p) else "an (X, y) pair" if _is_pair(p)
                 else f"a {type(p).__name__}" for p in data]
        raise InvalidDataError(
            f"data is a pair of {kinds[0]} and {kinds[1]}: a train/validation pair must be "
            "two Datasets or two (X, y) pairs, not one of each; wrap the arrays in one "
            "(torch.utils.data.TensorDataset(torch.as_tensor(X), torch.as_tensor(y))).")
    return _split(*_tensors(first, second, "data"), val_fraction, seed)


def epoch_batches(X: torch.Tensor, y: torch.Tensor, batch_size: int,
                  generator: torch.Generator, *,
                  avoid_single_row: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of shuffled batches, gathered from the tensors (no DataLoader): small
    data of narrow rows in one gather for the epoch, then views; other data a gather per
    batch, so it is never held twice (a whole-epoch copy of 50k images doubled a trial's
    memory and was slower than gathering each batch). Both give the same batches.

    `avoid_single_row` (a model with BatchNorm, which cannot train on one row): a last
    batch of one row is avoided by splitting the last two batches' rows evenly, so the
    epoch keeps its `steps_per_epoch` steps (32 + 1 rows become 16 + 17)."""
    order = torch.randperm(len(X), generator=generator).to(X.device)
    whole_epoch = (X.nbytes + y.nbytes <= WHOLE_EPOCH_GATHER_BYTES
                   and (X.nbytes + y.nbytes) / max(len(X), 1) <= WHOLE_EPOCH_GATHER_ROW_BYTES)
    if whole_epoch:
        X, y = X[order], y[order]
    starts = list(range(0, len(X), batch_size))
    if avoid_single_row and len(starts) > 1 and len(X) % batch_size == 1 and batch_size > 2:
        starts[-1] -= batch_size // 2
    for start, end in zip(starts, [*starts[1:], len(X)], strict=True):
        if whole_epoch:
            yield X[start:end], y[start:end]
        else:
            rows = order[start:end]
            yield X[rows], y[rows]


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    return -(-n_train // batch_size)


def has_batchnorm(model: torch.nn.Module) -> bool:
    """Does the model hold a BatchNorm layer (which fails on a training batch of one row)?"""
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


def _is_pair(value: Any) -> bool:
    """(X, y) as a tuple or list of two arrays; not X or y given as a list of rows or
    numbers (y = [0, 1] is two labels)."""
    return isinstance(value, (tuple, list)) and len(value) == 2 and not any(
        np.isscalar(part) or getattr(part, "ndim", 1) == 0 for part in value)


def _is_dataset(value: Any) -> bool:
    return isinstance(value, torch.utils.data.Dataset) and not isinstance(value, torch.Tensor)


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """torch's, numpy's and Python's global random streams seeded for the block, then put
    back: a Dataset that augments at random (as torchvision's transforms do) is read alike
    for one seed, whatever the caller drew before, and the caller's streams go on as if
    it had not been read."""
    numpy_state, python_state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(numpy_state)
            random.setstate(python_state)


def _item_tensor(value: Any, part: str, index: int, name: str) -> torch.Tensor:
    try:
        return torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError):  # a dict, a string, ragged lists
        kind = type(value).__name__ + (f" of dtype {value.dtype}" if hasattr(value, "dtype")
                                       else "")
        fix = ("numbers: a label or a target a row" if name == "y" else
               "a numeric array or tensor (for a model that takes a dict or several inputs, "
               "wrap it in a module that takes one tensor and splits it)")
        raise InvalidDataError(
            f"the {part} Dataset's item {index}: its {name} is a {kind}, not one numeric "
            f"tensor: autolr stacks each {name} into one tensor, so give {fix}.") from None


def _read_dataset(dataset: Any, part: str) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(dataset, torch.utils.data.IterableDataset) or not hasattr(dataset, "__len__"):
        raise InvalidDataError(
            f"the {part} Dataset must be map-style (with __len__ and __getitem__); "
            "an IterableDataset is not supported: pass tensors (X, y) instead."
        )
    if len(dataset) == 0:
        raise InvalidDataError(f"the {part} Dataset is empty; give at least a few samples.")
    if type(dataset) is torch.utils.data.TensorDataset and len(dataset.tensors) == 2:
        # its rows are these two tensors' rows: copied whole, not read item by item (40x)
        return tuple(t.detach().clone() for t in dataset.tensors)  # type: ignore[return-value]
    xs, ys = [], []
    for i in range(len(dataset)):
        item = dataset[i]
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise InvalidDataError(
                f"the {part} Dataset must return (x, y) pairs, but item {i} is "
                f"{type(item).__name__}."
            )
        xs.append(_item_tensor(item[0], part, i, "x"))
        ys.append(_item_tensor(item[1], part, i, "y"))
    for name, parts in (("x", xs), ("y", ys)):
        odd = next((i for i, t in enumerate(parts) if t.shape != parts[0].shape), None)
        if odd is not None:
            raise InvalidDataError(
                f"the {part} Dataset's items must all have one shape, but item 0's {name} has "
                f"shape {tuple(parts[0].shape)} and item {odd}'s {tuple(parts[odd].shape)}; "
                "pad or crop them to one size (autolr stacks them into one tensor).")
    return torch.stack(xs).detach(), torch.stack(ys).detach()


def _tensors(X: Any, y: Any, part: str) -> tuple[torch.Tensor, torch.Tensor]:
    X, y = _as_tensor(X, f"{part} X"), _as_tensor(y, f"{part} y")
    for what, values in (("X", X), ("y", y)):
        if values.is_complex():  # cast to float32, the imaginary part went without a word
            raise InvalidDataError(
                f"the {part} {what} holds complex numbers, which train as float32 with their "
                "imaginary part dropped; pass the real and imaginary parts as two columns "
                f"(torch.view_as_real({what}), or np.stack([{what}.real, {what}.imag], -1)).")
    if len(X) == 0:
        raise InvalidDataError(f"the {part} is empty: X has 0 rows; give at least a few samples.")
    if len(X) != len(y):
        raise InvalidDataError(
            f"the {part}'s X and y must have the same number of rows, but X has {len(X)} "
            f"and y has {len(y)}."
        )
    return X, y


def _is_sparse(value: Any) -> bool:
    """A scipy.sparse matrix or array, or a sparse torch tensor."""
    if isinstance(value, torch.Tensor):
        return value.layout != torch.strided
    module = type(value).__module__
    return module.startswith("scipy.sparse") and hasattr(value, "toarray")


def _is_pandas(value: Any) -> bool:
    module = type(value).__module__
    return (module == "pandas" or module.startswith("pandas.")) and hasattr(value, "isna")


def _pandas_array(value: Any, what: str) -> np.ndarray:
    """A DataFrame or Series as numbers. Missing values are named as such (an Int64 label
    column with a pd.NA became floats, and then "regression targets holding NaN"), and
    nullable dtypes (Int64, Float64: object arrays to numpy) become plain ones."""
    import pandas as pd

    missing = np.asarray(value.isna()).reshape(len(value), -1).any(axis=1)
    if missing.any():
        raise InvalidDataError(f"{what} holds missing values (NaN or NA) in "
                               f"{int(missing.sum())} row(s); drop or impute them first.")
    dtypes = list(value.dtypes) if hasattr(value, "columns") else [value.dtype]
    if all(pd.api.types.is_bool_dtype(d) for d in dtypes):
        return value.to_numpy(dtype=bool)
    if all(pd.api.types.is_integer_dtype(d) for d in dtypes):
        return value.to_numpy(dtype=np.int64)
    if all(pd.api.types.is_numeric_dtype(d) for d in dtypes):
        return value.to_numpy(dtype=np.float64)
    if hasattr(value, "columns") and not what.endswith(" y"):  # name them: "dtype object"
        # said nothing of which (labels as text in y get the encoding advice below)
        other = [f"{name!r} ({dtype})" for name, dtype in zip(value.columns, dtypes,
                                                             strict=True)
                 if not (pd.api.types.is_numeric_dtype(dtype)
                         or pd.api.types.is_bool_dtype(dtype))]
        raise InvalidDataError(
            f"{what} must hold numbers, but column(s) {', '.join(other[:5])}"
            f"{', ...' if len(other) > 5 else ''} do not; encode them as numbers (one-hot "
            "for categories: pd.get_dummies(df)) or drop them.")
    return np.asarray(value)  # text, categories...: refused below, with what they hold


def _as_tensor(value: Any, what: str) -> torch.Tensor:
    if _is_sparse(value):  # as numpy reads it: one object, "dtype object"
        raise InvalidDataError(
            f"{what} is a sparse matrix, which autolr does not batch; pass it dense "
            f"({'X.to_dense()' if isinstance(value, torch.Tensor) else 'X.toarray()'}), "
            "or a torch Dataset whose items are dense rows.")
    if isinstance(value, torch.Tensor):
        if value.ndim == 0:
            raise InvalidDataError(f"{what} must have one row per sample, but got a scalar.")
        # data, not a leaf of the user's graph: trials must not write into its .grad
        return value.detach()
    try:
        array = _pandas_array(value, what) if _is_pandas(value) else np.asarray(value)
    except InvalidDataError:
        raise
    except Exception as error:
        raise InvalidDataError(
            f"{what} must be a numpy array or a torch tensor, but got {type(value).__name__}."
        ) from error
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number)
                                     or array.dtype == bool):
        labels = array.dtype.kind in "US" or (array.dtype == object and array.size > 0
                                              and isinstance(array.flat[0], str))
        raise InvalidDataError(
            f"{what} must hold numbers, but got an array of dtype {array.dtype}"
            + ("; class labels given as text: encode them as integers 0..C-1, e.g. "
               "np.unique(y, return_inverse=True)[1] (or sklearn's LabelEncoder)."
               if labels and what.endswith(" y") else ".")
        )
    if array.ndim == 0:
        raise InvalidDataError(f"{what} must have one row per sample, but got a scalar.")
    if not array.flags.writeable:
        # pandas' copy-on-write and memory-mapped arrays are read-only, and torch warns
        # (undefined behaviour) on a tensor over one: a private copy, the user's untouched
        array = array.copy()
    return torch.from_numpy(np.ascontiguousarray(array))


def _split(X: torch.Tensor, y: torch.Tensor, val_fraction: float, seed: int) -> TrainValData:
    from sklearn.model_selection import train_test_split

    if len(X) < 2:
        raise InvalidDataError(
            f"need at least 2 samples to split off a validation set, but got {len(X)}."
        )
    _check_finite(X, "data")  # before splitting, so the message counts every bad row
    n_val = math.ceil(val_fraction * len(X))  # as train_test_split counts them
    if not 1 <= n_val < len(X):
        raise InvalidDataError(
            f"val_fraction={val_fraction} of {len(X)} rows leaves "
            f"{len(X) - n_val} to train on and {n_val} to validate on; each needs at least "
            "one: choose a val_fraction such as 0.2."
        )
    index = np.arange(len(X))
    classification = _is_classification(y)
    labels = y[:, 0] if y.shape[1:] == (1,) else y  # a column of labels: one a row
    try:
        train, val = train_test_split(index, test_size=val_fraction, random_state=seed,
                                      stratify=labels.numpy()
                                      if classification and labels.ndim == 1 else None)
    except ValueError:  # a class too rare to stratify: split without stratifying
        train, val = train_test_split(index, test_size=val_fraction, random_state=seed)
    train, val = torch.from_numpy(np.sort(train)), torch.from_numpy(np.sort(val))
    return _build(X[train], y[train], X[val], y[val])


def _check_finite(X: torch.Tensor, part: str) -> None:
    if X.is_floating_point() and not torch.isfinite(X).all():
        bad = int((~torch.isfinite(X)).reshape(len(X), -1).any(dim=1).sum())
        raise InvalidDataError(
            f"the {part} X holds NaN or inf in {bad} row(s); drop or impute them first."
        )
    _check_float32_range(X, f"the {part} X")


#: the largest float32: floats train in float32, where a float64 beyond it becomes inf
_FLOAT32_MAX = float(torch.finfo(torch.float32).max)


def _check_float32_range(values: torch.Tensor, what: str) -> None:
    """Finite float64 values beyond float32's range are inf once cast (helper-40: X at 1e39
    made every trial diverge, and the advice was a lower learning rate)."""
    if values.dtype != torch.float64 or not len(values):
        return
    beyond = (values > _FLOAT32_MAX) | (values < -_FLOAT32_MAX)  # no float copy of X (abs)
    if bool(beyond.any()):
        rows = int(beyond.reshape(len(values), -1).any(dim=1).sum())
        raise InvalidDataError(
            f"{what} holds values beyond float32's range (±{_FLOAT32_MAX:.3g}) in {rows} "
            f"row(s), and trains in float32, where they would be inf; rescale them (to mean "
            "0 and standard deviation 1, say).")


def _is_classification(y: torch.Tensor) -> bool:
    return not (y.is_floating_point() or y.is_complex())


def _build(X_train: torch.Tensor, y_train: torch.Tensor, X_val: torch.Tensor,
           y_val: torch.Tensor) -> TrainValData:
    for part, X, y in (("train", X_train, y_train), ("validation", X_val, y_val)):
        _tensors(X, y, part)
        _check_finite(X, part)
    if X_train.shape[1:] != X_val.shape[1:]:
        raise InvalidDataError(
            f"train and validation rows must have the same shape, but got "
            f"{tuple(X_train.shape[1:])} and {tuple(X_val.shape[1:])}."
        )
    # floats train in float32 (the dtype of torch's weights); integer X (token ids) stays
    if X_train.is_floating_point():
        X_train, X_val = X_train.float(), X_val.float()
    if _is_classification(y_train) != _is_classification(y_val):
        raise InvalidDataError(
            "train and validation y must both be integer labels or both be floats, "
            f"but got {y_train.dtype} and {y_val.dtype}."
        )
    if _is_classification(y_train):
        return _classification(X_train, y_train.long(), X_val, y_val.long())
    for part, y in (("train", y_train), ("validation", y_val)):
        if torch.isfinite(y).all():
            _check_float32_range(y, f"the {part} y (regression targets)")
    y_train, y_val = y_train.float(), y_val.float()
    for part, y in (("train", y_train), ("validation", y_val)):
        if not torch.isfinite(y).all():
            raise InvalidDataError(
                f"the {part} y (regression targets) holds NaN or inf; drop those rows first."
            )
    if y_train.ndim == 1:  # one target: (n, 1), matching a model that outputs (n, 1)
        y_train, y_val = y_train[:, None], y_val[:, None]
    return TrainValData(X_train, y_train, X_val, y_val, REGRESSION)


def _classification(X_train: torch.Tensor, y_train: torch.Tensor, X_val: torch.Tensor,
                    y_val: torch.Tensor) -> TrainValData:
    """Class labels: one a row (1-D y), or one a position (a token, a pixel: y of shape
    (rows, *positions), where -100 marks padding, as cross-entropy reads it)."""
    if y_train.shape[1:] != y_val.shape[1:]:
        raise InvalidDataError(
            f"train and validation y must have the same shape a row, but got "
            f"{tuple(y_train.shape[1:])} and {tuple(y_val.shape[1:])}.")
    if y_train.shape[1:] == (1,):  # a column of labels (df[["label"]]): one a row
        y_train, y_val = y_train[:, 0], y_val[:, 0]
    labels = torch.cat([y_train.flatten(), y_val.flatten()])
    if y_train.ndim > 1:  # per-position labels: padding counts for nothing
        labels = labels[labels != IGNORED_LABEL]
    if not len(labels):
        raise InvalidDataError(f"every label is padding ({IGNORED_LABEL}): nothing to learn.")
    low = int(labels.min())
    labelled = labels[labels != IGNORED_LABEL]
    if y_train.ndim == 1 and low == IGNORED_LABEL and not bool((labelled < 0).any()):
        # Hugging Face's "no label": the LabelEncoder advice below would make it a class
        raise InvalidDataError(
            f"some rows have label {IGNORED_LABEL}, which marks padding only in per-position "
            "labels (y of shape (rows, positions)); a row without a label has nothing to "
            f"learn from: leave those rows out (keep = y != {IGNORED_LABEL}; X, y = X[keep], "
            "y[keep]).")
    if low < 0:
        raise InvalidDataError(
            f"class labels must be 0..C-1, but the smallest label is {low}; "
            "remap them, e.g. with sklearn.preprocessing.LabelEncoder"
            + (f" (padding in per-position labels is {IGNORED_LABEL})." if y_train.ndim > 1
               else "."))
    if bool((labels == labels[0]).all()):  # nothing to tell apart: every loss would be 0
        raise InvalidDataError(
            f"every label is {int(labels[0])}: one class, nothing to tell apart; give "
            "examples of at least two classes (or float y for regression).")
    n_classes = int(labels.max()) + 1
    unseen = sorted(set(y_val[y_val != IGNORED_LABEL].unique().tolist())
                    - set(y_train[y_train != IGNORED_LABEL].unique().tolist()))
    if unseen:  # a warning, not an error: a few rare classes may well fall so
        logger.warning(
            "the validation labels hold class(es) %s that no training row has: no trial can "
            "learn them, and every trial's validation metric counts them as errors",
            ", ".join(map(str, unseen[:10])) + (", ..." if len(unseen) > 10 else ""))
    return TrainValData(X_train, y_train, X_val, y_val, CLASSIFICATION, n_classes)
