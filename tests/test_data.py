"""Data coercion: accepted forms, the split, validation errors, in-memory batching."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
import torch
from torch.utils.data import Dataset, IterableDataset, TensorDataset

from autolr.data import (
    CLASSIFICATION,
    REGRESSION,
    TrainValData,
    coerce_data,
    epoch_batches,
    has_batchnorm,
    steps_per_epoch,
)
from autolr.errors import AutoLRError, InvalidDataError


def classification_arrays(n: int = 200, features: int = 4, classes: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, features)), np.arange(n) % classes


def regression_arrays(n: int = 100, features: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, features)).astype(np.float32)
    return X, (X @ np.arange(1, features + 1)).astype(np.float32)


# --- accepted forms ---------------------------------------------------------------------

def test_numpy_classification():
    X, y = classification_arrays()
    data = coerce_data((X, y))
    assert isinstance(data, TrainValData)
    assert (data.task, data.n_classes) == (CLASSIFICATION, 3)
    assert (data.n_train, len(data.X_val)) == (160, 40)
    assert data.X_train.dtype == torch.float32  # float64 X trains as float32
    assert data.y_train.dtype == torch.int64
    assert data.X_train.shape == (160, 4)


def test_tensors_and_a_list_pair_are_accepted():
    X, y = classification_arrays()
    from_tensors = coerce_data([torch.from_numpy(X), torch.from_numpy(y)])
    from_numpy = coerce_data((X, y))
    for name in ("X_train", "y_train", "X_val", "y_val"):
        assert torch.equal(getattr(from_tensors, name), getattr(from_numpy, name))


def test_float64_becomes_float32_and_integer_x_stays_integer():
    X, y = classification_arrays()
    assert coerce_data((X.astype(np.float64), y)).X_val.dtype == torch.float32
    tokens = np.arange(200 * 5).reshape(200, 5) % 50
    data = coerce_data((tokens, y))
    assert data.X_train.dtype == torch.int64  # token ids are not turned into floats


def test_regression_1d_y_becomes_a_column():
    X, y = regression_arrays()
    data = coerce_data((X, y))
    assert data.task == REGRESSION
    assert data.n_classes is None
    assert data.y_train.shape == (80, 1)
    assert data.y_val.shape == (20, 1)
    assert data.y_train.dtype == torch.float32
    two_targets = coerce_data((X, np.stack([y, -y], axis=1)))
    assert two_targets.y_train.shape == (80, 2)


def test_float64_regression_targets_become_float32():
    X, y = regression_arrays()
    assert coerce_data((X, y.astype(np.float64))).y_train.dtype == torch.float32


def test_stratified_split_keeps_class_proportions():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], [120, 60, 20])  # 60% / 30% / 10%
    rng.shuffle(y)
    X = rng.normal(size=(200, 2))
    data = coerce_data((X, y), val_fraction=0.25, seed=5)
    assert torch.bincount(data.y_val).tolist() == [30, 15, 5]
    assert torch.bincount(data.y_train).tolist() == [90, 45, 15]


def test_a_class_too_rare_to_stratify_still_splits():
    X = np.random.default_rng(0).normal(size=(50, 2))
    y = np.zeros(50, dtype=np.int64)
    y[0] = 1  # a single sample of class 1
    data = coerce_data((X, y))
    assert data.n_train + len(data.X_val) == 50
    assert data.n_classes == 2


def test_seeded_split_is_deterministic_and_rows_stay_paired():
    X, y = classification_arrays()
    X[:, 0] = np.arange(200)  # row ids, to check X and y rows stay together
    first, again = coerce_data((X, y), seed=3), coerce_data((X, y), seed=3)
    other = coerce_data((X, y), seed=4)
    assert torch.equal(first.X_train, again.X_train)
    assert torch.equal(first.y_val, again.y_val)
    assert not torch.equal(first.X_val, other.X_val)
    for data in (first, other):
        rows = torch.cat([data.X_train[:, 0], data.X_val[:, 0]]).long()
        assert sorted(rows.tolist()) == list(range(200))  # a partition of the rows
        assert torch.equal(data.y_train, torch.from_numpy(y)[data.X_train[:, 0].long()])


def test_val_fraction_sets_the_split_size():
    X, y = classification_arrays(100)
    assert len(coerce_data((X, y), val_fraction=0.1).X_val) == 10
    for bad in (0.0, 1.0, -0.2, 1.5):
        with pytest.raises(InvalidDataError, match=r"val_fraction must be in \(0, 1\)"):
            coerce_data((X, y), val_fraction=bad)


def test_a_train_validation_pair_is_used_as_given():
    X, y = classification_arrays(100)
    train, val = (X[:70], y[:70]), (X[70:], y[70:])
    data = coerce_data((train, val), seed=123)
    assert torch.equal(data.X_train, torch.from_numpy(X[:70]).float())
    assert torch.equal(data.y_train, torch.from_numpy(y[:70]))
    assert torch.equal(data.X_val, torch.from_numpy(X[70:]).float())
    assert torch.equal(data.y_val, torch.from_numpy(y[70:]))
    assert data.n_classes == 3


def test_classes_are_counted_over_train_and_validation():
    X = np.zeros((6, 2))
    data = coerce_data(((X[:3], np.array([0, 1, 0])), (X[3:], np.array([2, 1, 0]))))
    assert data.n_classes == 3


def test_tensor_dataset_and_a_pair_of_datasets():
    X, y = classification_arrays(100)
    Xt, yt = torch.from_numpy(X).float(), torch.from_numpy(y)
    whole = coerce_data(TensorDataset(Xt, yt))
    assert whole.task == CLASSIFICATION and whole.n_train == 80
    assert torch.equal(whole.X_val, coerce_data((Xt, yt)).X_val)
    pair = coerce_data((TensorDataset(Xt[:60], yt[:60]), TensorDataset(Xt[60:], yt[60:])))
    assert torch.equal(pair.X_train, Xt[:60])
    assert torch.equal(pair.y_val, yt[60:])


def test_a_tensor_dataset_is_read_whole_as_its_items_would_be_and_not_shared():
    # read item by item it took 5 s for 50k rows; its two tensors are its rows
    from autolr.data import _read_dataset

    X, y = torch.randn(30, 4, dtype=torch.float64), torch.arange(30)

    class Items(Dataset):  # the same rows, read one at a time
        def __len__(self) -> int:
            return 30

        def __getitem__(self, i: int):
            return X[i], y[i]

    whole, items = _read_dataset(TensorDataset(X, y), "data"), _read_dataset(Items(), "data")
    for a, b in zip(whole, items, strict=True):
        assert torch.equal(a, b) and a.dtype == b.dtype and a.shape == b.shape
    whole[0][0, 0] = 99.0
    assert X[0, 0] != 99.0  # a copy: nothing the user gave changes


class Squares(Dataset):
    """A map-style Dataset computing its items on the fly, as a user's would."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        return np.array([i, i * i], dtype=np.float64), float(i) / self.n


def test_a_custom_map_style_dataset():
    data = coerce_data(Squares(50), seed=1)
    assert data.task == REGRESSION  # python floats as y
    assert data.X_train.dtype == torch.float32
    assert data.y_train.shape == (40, 1)
    assert data.X_train.shape == (40, 2)
    assert torch.allclose(data.y_train[:, 0], data.X_train[:, 0] / 50)


class Stream(IterableDataset):
    def __iter__(self):
        yield from ((torch.zeros(2), 0) for _ in range(10))


def test_an_iterable_dataset_is_rejected():
    with pytest.raises(InvalidDataError, match="map-style.*IterableDataset is not supported"):
        coerce_data(Stream())
    with pytest.raises(InvalidDataError, match="IterableDataset"):
        coerce_data((Stream(), Stream()))


def test_a_dataset_must_yield_pairs():
    with pytest.raises(InvalidDataError, match=r"must return \(x, y\) pairs, but item 0"):
        coerce_data(TensorDataset(torch.zeros(10, 2)))  # 1-tuples


def test_a_dataset_whose_x_is_a_dict_names_the_fix():
    class Dicts(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return {"ids": torch.zeros(3), "mask": torch.ones(3)}, i % 2

    # was torch's bare "Could not infer dtype of dict" RuntimeError
    with pytest.raises(InvalidDataError, match=r"item 0: its x is a dict, not one numeric tensor: "
                       r".* wrap it in a module that takes one tensor"):
        coerce_data(Dicts())


# --- bad input --------------------------------------------------------------------------

def test_empty_data():
    with pytest.raises(InvalidDataError, match="empty.*give at least a few samples"):
        coerce_data((np.zeros((0, 4)), np.zeros(0, dtype=np.int64)))
    with pytest.raises(InvalidDataError, match="Dataset is empty"):
        coerce_data(TensorDataset(torch.zeros(0, 2), torch.zeros(0)))
    with pytest.raises(InvalidDataError, match="validation is empty"):
        coerce_data(((np.zeros((5, 2)), np.zeros(5)), (np.zeros((0, 2)), np.zeros(0))))


def test_x_and_y_of_different_lengths():
    with pytest.raises(InvalidDataError,
                       match="same number of rows, but X has 100 and y has 99"):
        coerce_data((np.zeros((100, 3)), np.zeros(99, dtype=np.int64)))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_or_inf_in_x_counts_the_rows(bad):
    X, y = classification_arrays(100)
    X[[3, 17, 40, 41, 99], 1] = bad
    X[17, 2] = bad  # two bad values in one row: still one row
    with pytest.raises(InvalidDataError, match=r"NaN or inf in 5 row\(s\); drop or impute"):
        coerce_data((X, y))
    with pytest.raises(InvalidDataError, match=r"the train X holds NaN or inf in 5 row\(s\)"):
        coerce_data(((X, y), classification_arrays(20)))
    with pytest.raises(InvalidDataError, match=r"validation X holds NaN or inf in 5 row\(s\)"):
        coerce_data((classification_arrays(20), (X, y)))


def test_float64_beyond_float32s_range_is_refused_not_trained_as_inf():
    # X at 1e39 became inf in float32: every trial diverged, and the advice was a lower lr
    X, y = classification_arrays(100)
    X[[3, 17], 1] = 1e39
    with pytest.raises(InvalidDataError, match=r"X holds values beyond float32's range "
                                               r"\(±3.4e\+38\) in 2 row\(s\).*rescale"):
        coerce_data((X, y))
    targets = np.linspace(0.0, 1.0, 100)
    targets[5] = -2e39
    with pytest.raises(InvalidDataError, match=r"y \(regression targets\) holds values beyond "
                                               r"float32's range"):
        coerce_data((X[:, :1] * 0, targets))
    X[[3, 17], 1] = 3e38  # within it: trained
    assert coerce_data((X, y)).X_train.dtype == torch.float32


def test_negative_labels():
    X, y = classification_arrays(50)
    y = y - 1
    with pytest.raises(InvalidDataError, match="labels must be 0..C-1.*smallest label is -1"):
        coerce_data((X, y))


def test_validation_classes_no_training_row_has_are_warned_of(caplog):
    X, y = classification_arrays(40)
    train, val = (X[:30], y[:30] % 2), (X[30:], np.where(np.arange(10) < 2, 2, y[30:] % 2))
    with caplog.at_level(logging.WARNING, logger="autolr"):
        coerce_data((train, val))
    assert "the validation labels hold class(es) 2 that no training row has" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="autolr"):
        coerce_data((X, y))
    assert "no training row has" not in caplog.text


def test_rows_labelled_minus_100_are_told_to_be_left_out_not_encoded():
    # Hugging Face marks an unlabelled row -100: a LabelEncoder would train it as a class
    X, y = classification_arrays(50)
    unlabelled = np.where(np.arange(50) < 5, -100, y)
    with pytest.raises(InvalidDataError, match=r"some rows have label -100.*leave those rows "
                                               r"out \(keep = y != -100"):
        coerce_data((X, unlabelled))
    with pytest.raises(InvalidDataError, match="smallest label is -100; remap them"):
        coerce_data((X, np.where(unlabelled == 0, -3, unlabelled)))  # other negatives too


def test_integer_y_of_more_dimensions_is_a_label_a_position():
    X, y = classification_arrays(50)
    tags = np.stack([y, (y + 1) % 3, np.full_like(y, -100)], 1)  # a padded third token
    data = coerce_data((X, tags))  # split without stratifying (rows hold several labels)
    assert data.task == "classification" and data.n_classes == 3
    assert data.y_train.shape == (40, 3) and data.y_val.shape == (10, 3)
    with pytest.raises(InvalidDataError, match=r"smallest label is -2; .*\(padding in "
                                               r"per-position labels is -100"):
        coerce_data((X, np.where(tags == 0, -2, tags)))
    with pytest.raises(InvalidDataError, match="every label is padding"):
        coerce_data((X, np.full((50, 3), -100)))
    assert coerce_data((X, y[:, None])).y_train.shape == (40,)  # a column: one label a row
    with pytest.raises(InvalidDataError, match=r"same shape a row, but got \(3,\) and \(2,\)"):
        coerce_data(((X, tags), (X, tags[:, :2])))


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_regression_targets(bad):
    X, y = regression_arrays()
    y[7] = bad
    with pytest.raises(InvalidDataError, match="regression targets\\) holds NaN or inf"):
        coerce_data(((X[:50], y[:50]), (X[50:], y[50:])))


@pytest.mark.parametrize(("data", "message"), [
    ("a string", r"data must be \(X, y\)"),
    ((np.zeros((3, 2)),), r"data must be \(X, y\)"),
    ((np.zeros(3), np.zeros(3), np.zeros(3)), r"data must be \(X, y\)"),
    (((np.zeros((3, 2)),), (np.zeros((3, 2)), np.zeros(3))), "parts of lengths 1 and 2"),
    ((np.array(["a", "b"]), np.array([0, 1])), "must hold numbers"),
    ((np.zeros((2, 3)), np.array(["cat", "dog"])), r"encode them as integers 0..C-1"),
    ((np.array([{}, {}]), np.array([0, 1])), "must hold numbers"),
    ((np.float64(1.0), np.float64(1.0)), "but got a scalar"),
    ((torch.tensor(1.0), torch.tensor(1.0)), "but got a scalar"),
    ((np.zeros((1, 2)), np.zeros(1, dtype=np.int64)), "at least 2 samples"),
    # said as what they are: numpy read each as one object, "dtype object" (helper-40)
    ((scipy.sparse.csr_matrix(np.eye(4)), np.arange(4) % 2),
     r"X is a sparse matrix, which autolr does not batch; pass it dense \(X.toarray\(\)\)"),
    ((torch.eye(4).to_sparse(), np.arange(4) % 2), r"pass it dense \(X.to_dense\(\)\)"),
    ((pd.DataFrame({"size": [1.0, 2.0, 3.0], "city": ["a", "b", "c"]}), np.arange(3) % 2),
     r"column\(s\) 'city' \(\w+\) do not; encode them as numbers \(one-hot for categories: "
     r"pd.get_dummies"),
    ((np.zeros((3, 2)), pd.DataFrame({"label": ["x", "y", "x"]})),
     r"encode them as integers 0..C-1"),
    ((TensorDataset(torch.zeros(4, 2), torch.arange(4) % 2), (np.zeros((4, 2)), np.arange(4) % 2)),
     r"data is a pair of a Dataset and an \(X, y\) pair: .* not one of each; wrap the arrays"),
    ((np.zeros((3, 2)), np.array([1 + 2j, 3j, 1.0])),
     r"y holds complex numbers.*two columns \(torch.view_as_real\(y\)"),
])
def test_other_bad_input(data, message):
    with pytest.raises(InvalidDataError, match=message) as error:
        coerce_data(data)
    assert isinstance(error.value, AutoLRError)


def test_train_and_validation_must_agree():
    Xa, ya = classification_arrays(20, features=4)
    Xb, yb = classification_arrays(20, features=5)
    with pytest.raises(InvalidDataError, match=r"same shape, but got \(4,\) and \(5,\)"):
        coerce_data(((Xa, ya), (Xb, yb)))
    with pytest.raises(InvalidDataError, match="both be integer labels or both be floats"):
        coerce_data(((Xa, ya), (Xa, ya.astype(np.float32))))


# --- the user's arrays are never written to ----------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_users_arrays_are_not_modified(dtype):
    X, y = classification_arrays(100)
    X = X.astype(dtype)
    Xr, yr = regression_arrays(100)
    copies = [a.copy() for a in (X, y, Xr, yr)]
    tX, ty = torch.from_numpy(X.copy()), torch.from_numpy(y.copy())
    tensor_copies = (tX.clone(), ty.clone())
    generator = torch.Generator().manual_seed(0)
    for data in [(X, y), ((X[:80], y[:80]), (X[80:], y[80:])), (Xr, yr),
                 ((Xr[:80], yr[:80]), (Xr[80:], yr[80:])), (tX, ty),
                 TensorDataset(tX, ty)]:
        result = coerce_data(data)
        for _ in epoch_batches(result.X_train, result.y_train, 16, generator):
            pass
    for before, after in zip(copies, (X, y, Xr, yr), strict=True):
        np.testing.assert_array_equal(before, after)
    assert torch.equal(tX, tensor_copies[0]) and torch.equal(ty, tensor_copies[1])


def test_read_only_arrays_are_copied_without_a_warning(recwarn):
    # pandas' copy-on-write gives read-only arrays; torch warns on a tensor over one
    X, y = classification_arrays(100)
    X.flags.writeable = False
    result = coerce_data((X, y))
    assert not [w for w in recwarn if "not writable" in str(w.message)]
    assert result.X_train.shape[0] + result.X_val.shape[0] == 100


def test_pandas_nullable_columns_are_numbers_and_missing_values_are_named():
    import pandas as pd

    X, y = classification_arrays(100)
    frame = pd.DataFrame(X).astype("Float64")  # nullable: an object array to numpy
    labels = pd.Series(y, dtype="Int64")
    data = coerce_data((frame, labels))
    assert data.task == "classification" and data.X_train.dtype == torch.float32
    labels[3] = pd.NA  # was read as float regression targets "holding NaN"
    with pytest.raises(InvalidDataError, match=r"y holds missing values \(NaN or NA\) in 1 "):
        coerce_data((frame, labels))
    frame.iloc[[5, 7], 0] = pd.NA
    with pytest.raises(InvalidDataError, match=r"X holds missing values .* in 2 row"):
        coerce_data((frame, pd.Series(y)))


# --- batching -------------------------------------------------------------------------------

def test_epoch_batches_cover_every_row_once_with_a_last_partial_batch():
    X = torch.arange(103, dtype=torch.float32)[:, None].repeat(1, 3)
    y = torch.arange(103)
    batches = list(epoch_batches(X, y, 10, torch.Generator().manual_seed(0)))
    assert [len(b[0]) for b in batches] == [10] * 10 + [3]
    assert len(batches) == steps_per_epoch(103, 10) == 11
    rows = torch.cat([b[1] for b in batches])
    assert sorted(rows.tolist()) == list(range(103))
    assert rows.tolist() != list(range(103))  # shuffled
    for inputs, targets in batches:
        assert torch.equal(inputs[:, 0].long(), targets)  # X and y rows stay paired


def test_epoch_batches_order_is_seeded():
    X, y = torch.randn(50, 2), torch.arange(50)

    def order(seed: int) -> list[int]:
        batches = epoch_batches(X, y, 8, torch.Generator().manual_seed(seed))
        return torch.cat([b[1] for b in batches]).tolist()

    assert order(1) == order(1)
    assert order(1) != order(2)
    generator = torch.Generator().manual_seed(1)
    epochs = [torch.cat([b[1] for b in epoch_batches(X, y, 8, generator)]).tolist()
              for _ in range(2)]
    assert epochs[0] == order(1)
    assert epochs[0] != epochs[1]  # each epoch draws a new order from the generator


def test_large_data_is_gathered_a_batch_at_a_time_into_the_same_batches(monkeypatch):
    # a whole-epoch copy held a large training set twice (and was the slower path there)
    import autolr.data

    X, y = torch.randn(101, 7), torch.arange(101)

    def batches(limit: int, avoid: bool) -> list[tuple[torch.Tensor, torch.Tensor]]:
        monkeypatch.setattr(autolr.data, "WHOLE_EPOCH_GATHER_BYTES", limit)
        return list(epoch_batches(X, y, 10, torch.Generator().manual_seed(3),
                                  avoid_single_row=avoid))

    for avoid in (False, True):
        whole, per_batch = batches(2**30, avoid), batches(0, avoid)
        assert len(whole) == len(per_batch) == 11
        for (xw, yw), (xb, yb) in zip(whole, per_batch, strict=True):
            assert torch.equal(xw, xb) and torch.equal(yw, yb)
    original = X.clone()
    for inputs, _ in batches(0, False):
        inputs += 1  # a batch is its own copy: the training set is untouched
    assert torch.equal(X, original)


def test_epoch_batches_with_one_batch_bigger_than_the_data():
    X, y = torch.randn(5, 2), torch.arange(5)
    batches = list(epoch_batches(X, y, 32, torch.Generator().manual_seed(0)))
    assert len(batches) == 1 and len(batches[0][0]) == 5


def test_steps_per_epoch_rounds_up():
    assert steps_per_epoch(100, 32) == 4
    assert steps_per_epoch(96, 32) == 3
    assert steps_per_epoch(5, 32) == 1


def test_with_batchnorm_a_last_row_on_its_own_is_avoided_in_as_many_steps():
    # 65 rows at batch 32: 32 + 16 + 17, not 32 + 32 + 1 (BatchNorm cannot train on one row)
    X, y = torch.arange(65, dtype=torch.float32)[:, None], torch.arange(65)
    sizes = lambda avoid, X=X, y=y: [len(b[0]) for b in epoch_batches(  # noqa: E731
        X, y, 32, torch.Generator().manual_seed(0), avoid_single_row=avoid)]
    assert sizes(True) == [32, 16, 17] and sizes(False) == [32, 32, 1]
    assert len(sizes(True)) == steps_per_epoch(65, 32)  # the schedule's steps are unchanged
    batches = list(epoch_batches(X, y, 32, torch.Generator().manual_seed(0),
                                 avoid_single_row=True))
    assert sorted(torch.cat([b[1] for b in batches]).tolist()) == list(range(65))
    X, y = torch.zeros(66, 1), torch.arange(66)  # two left over: a batch of their own
    assert sizes(True, X, y) == [32, 32, 2]


def test_a_model_with_batchnorm_trains_when_one_row_would_be_left_over():
    import autolr

    X, y = classification_arrays()
    data = ((X[:65], y[:65]), (X[65:90], y[65:90]))  # 65 train rows: 65 % 32 == 1
    model = torch.nn.Sequential(torch.nn.Linear(X.shape[1], 8), torch.nn.BatchNorm1d(8),
                                torch.nn.ReLU(), torch.nn.Linear(8, int(y.max()) + 1))
    assert has_batchnorm(model) and not has_batchnorm(model[0])
    trained = autolr.train(model, data, {"lr": 1e-2, "batch_size": 32}, epochs=2)
    assert trained.metrics["state"] == "complete", trained.metrics["reason"]
    assert trained.metrics["steps_run"] == 6


def test_input_tensors_that_require_grad_are_data_and_get_no_grad():
    import autolr

    X, y = classification_arrays()
    X = torch.tensor(X, requires_grad=True)
    trained = autolr.train(torch.nn.Linear(X.shape[1], int(y.max()) + 1), (X, torch.tensor(y)),
                           {"lr": 1e-2}, epochs=1)
    assert trained.metrics["state"] == "complete", trained.metrics["reason"]
    assert X.grad is None


def test_lists_of_two_rows_are_x_and_y_not_a_train_validation_pair():
    data = coerce_data(([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.2, 0.1]], [0, 1, 0, 1]),
                       val_fraction=0.5)
    assert data.task == CLASSIFICATION and data.n_train == 2
    pair = coerce_data(([[[0.0], [1.0]], [0, 1]], [[[0.5], [0.2]], [0, 1]]))
    assert pair.n_train == 2 and len(pair.X_val) == 2  # each part a list (X, y)


def test_to_device_keeps_everything():
    X, y = classification_arrays(40)
    data = coerce_data((X, y)).to("cpu")
    assert data.task == CLASSIFICATION and data.n_classes == 3 and data.n_train == 32


def test_ragged_dataset_items_and_a_dataloader_get_errors_naming_the_fix():
    class Ragged(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return torch.zeros(3 + (i == 2)), 0

    with pytest.raises(InvalidDataError,
                       match=r"item 0's x has shape \(3,\) and item 2's \(4,\); pad or crop"):
        coerce_data(Ragged(), val_fraction=0.25, seed=0)
    dataset = TensorDataset(torch.randn(20, 4), torch.randint(0, 2, (20,)))
    with pytest.raises(InvalidDataError, match=r"pass its Dataset \(loader.dataset\)"):
        coerce_data(torch.utils.data.DataLoader(dataset, batch_size=4), val_fraction=0.2,
                    seed=0)


def test_a_column_of_labels_is_stratified_as_a_1d_y():
    # (rows, 1) labels were split without stratifying: 1 to 4 of 10 rare rows in val
    X = np.random.default_rng(0).normal(size=(200, 3)).astype(np.float32)
    y = np.zeros(200, dtype=np.int64)
    y[:10] = 1
    for seed in range(4):
        flat = coerce_data((X, y), seed=seed)
        column = coerce_data((X, y[:, None]), seed=seed)
        assert int((column.y_val == 1).sum()) == int((flat.y_val == 1).sum()) == 2
        assert torch.equal(column.y_val, flat.y_val)
