"""The three probes: scikit-learn's face, logistic regression against lbfgs, kNN against a float64
reference, and each probe through `bench run` in every protocol."""

import csv

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from conftest import console, invoke
from benchmark.probe import KNN, L2SVM, LogReg, knn
from benchmark.probe.logreg import LogRegSolver, certify, objective
from benchmark.probe.operand import Spectrum


# all pass; scikit-learn itself skips its array-API checks unless SCIPY_ARRAY_API=1. KNN refuses k above the rows
# it is fitted on (never clamped), and the checks fit 15 rows, so it is checked at k=5 (scikit-learn's own default).
@parametrize_with_checks([L2SVM(), LogReg(), KNN(k=5)])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


@pytest.mark.parametrize("probe", [L2SVM(C=1e-2), LogReg(C=1e-1), KNN(k=10)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numpy_input_and_any_label_values(probe, dtype, digits):
    X, y = digits
    X = X.astype(dtype)
    assert probe.fit(X[:1200], y[:1200]).score(X[1200:], y[1200:]) > 0.85
    signs = np.where(y % 2 == 0, -1, 1)  # -1/+1 labels come back as -1/+1
    predicted = probe.fit(X[:1200], signs[:1200]).predict(X[1200:])
    assert set(predicted) <= {-1, 1} and (predicted == signs[1200:]).mean() > 0.8
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])[y]
    assert probe.fit(X[:1200], names[:1200]).score(X[1200:], names[1200:]) > 0.85
    assert list(probe.classes_) == sorted(set(names))


def test_torch_features_with_numpy_labels_and_pipelines(digits):
    X, y = digits
    model = L2SVM(C=1e-2).fit(torch.from_numpy(X).float(), y)
    assert model.score(torch.from_numpy(X).float(), torch.from_numpy(y)) > 0.95
    assert model.coef_.shape == (10, 64) and model.gap_ <= 1e-3
    search = GridSearchCV(make_pipeline(StandardScaler(), LogReg()), {"logreg__C": [1e-3, 1e-1]}, cv=3)
    assert search.fit(X, y).best_score_ > 0.85
    proba = LogReg(C=0.1).fit(X, y).predict_proba(X[:5])
    assert proba.shape == (5, 10) and np.allclose(proba.sum(1), 1)
    assert L2SVM().get_params() == {"C": 1e-4, "tol": 1e-3, "max_iter": 200, "time_limit": None, "precision": "auto",
                                    "device": "auto", "verbose": False}


@pytest.mark.parametrize("C", [1e-3, 1e-1, 10.0])
def test_logreg_matches_lbfgs_to_tight_tolerance(C, digits):
    X, y = digits
    Xt, yt = torch.from_numpy(X).float(), torch.from_numpy(y)
    ours = LogRegSolver(C=C, tol=1e-6, precision="float32").fit(Xt, yt, spectrum=Spectrum.of(Xt, rank=32))
    with_ones = np.hstack([Xt.double().numpy(), np.ones((len(X), 1))])
    theirs = LogisticRegression(C=C, fit_intercept=False, tol=1e-10, max_iter=10_000).fit(with_ones, y)
    W, b = torch.from_numpy(theirs.coef_[:, :-1]).float(), torch.from_numpy(theirs.coef_[:, -1]).float()
    assert ours.gap <= 1e-6 and certify(Xt, yt, W, b, C) <= 1e-6
    assert abs(ours.objective(Xt, yt) - objective(Xt, yt, W, b, C)) <= 1e-6 * objective(Xt, yt, W, b, C)


def test_logreg_mixed_precision_is_certified(digits):
    X, y = digits
    Xt, yt = torch.from_numpy(X).float(), torch.from_numpy(y)
    model = LogRegSolver(C=1.0, tol=1e-3, precision="mixed").fit(Xt, yt)
    assert model.gap <= 1e-3 and certify(Xt, yt, model.coef_, model.intercept_, 1.0) <= 1e-3


def test_mixed_precision_where_bfloat16_is_not_native_warns(monkeypatch):
    from benchmark.probe import operand

    monkeypatch.setattr(operand, "bfloat16_is_fast", lambda device: False)
    with pytest.warns(UserWarning, match="not native here.*auto picks float32"):
        operand.Operand.of(torch.ones(8, 3), "mixed")


@pytest.mark.parametrize("fast", [False, True])
def test_knn_neighbours_match_a_float64_reference(fast):
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(10, 256, generator=g)
    train = knn.normalised(centres.repeat(300, 1) + 0.8 * torch.randn(3000, 256, generator=g))
    queries = knn.normalised(centres.repeat(40, 1) + 0.8 * torch.randn(400, 256, generator=g))
    found = knn.neighbours(train, queries, 50, fast=fast, desc=None)
    reference = torch.topk(queries.double() @ train.double().T, 50, dim=1)
    assert (found.index == reference.indices).float().mean() > 0.999  # the rest: near-ties in float32
    labels = torch.arange(10).repeat(300)
    ours = knn.predict(knn.vote(found, labels, 10, 20, 0.07))
    ref = knn.predict(knn.vote(knn.Neighbours(reference.values.float(), reference.indices), labels, 10, 20, 0.07))
    assert (ours == ref).all()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_knn_rough_scores_error_bound_covers_every_product(dtype):
    """The window is drawn with these bounds: one too small could drop a true neighbour. A CPU's bfloat16 product
    returns bfloat16, so the bound holds the sum's own rounding (u of it) beside the inputs' and the additions'."""
    g = torch.Generator().manual_seed(0)
    q, x = knn.normalised(torch.randn(64, 512, generator=g)), knn.normalised(torch.randn(256, 512, generator=g))
    x[0] = q[0]  # a similarity of 1, the largest output to round
    rough, slack = knn.Rough.of(x, dtype).scores(q)
    error = (rough.double() - q.double() @ x.double().T).abs()
    assert (error <= torch.as_tensor(slack).double()).all()
    if dtype == torch.bfloat16:
        assert (slack >= knn.UNIT_ROUNDING[dtype] * rough.abs()).all()
        assert float(slack.max()) < 3 * knn.UNIT_ROUNDING[dtype]  # tighter than the worst case of all three


def test_knn_stays_exact_when_the_user_lowers_float32_matmul_precision():
    """``set_float32_matmul_precision("medium")`` runs float32 products in bfloat16 on AMX CPUs (TF32 on CUDA): the
    float32 windows' bound would not hold. kNN runs its products as written and gives the setting back."""
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(10, 256, generator=g)
    train = knn.normalised(centres.repeat(100, 1) + 0.8 * torch.randn(1000, 256, generator=g))
    queries = knn.normalised(centres.repeat(10, 1) + 0.8 * torch.randn(100, 256, generator=g))
    expected = knn.neighbours(train, queries, 20, fast=False, desc=None)
    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("medium")
        found = knn.neighbours(train, queries, 20, fast=False, desc=None)
        assert torch.get_float32_matmul_precision() == "medium"
    finally:
        torch.set_float32_matmul_precision(before)
    assert torch.equal(found.index, expected.index) and torch.equal(found.similarity, expected.similarity)


def test_knn_ties_break_by_training_index():
    base = knn.normalised(torch.eye(4))
    train = torch.cat([base, base])  # every row twice: rows i and i + 4 tie
    found = knn.neighbours(train, base[:2], 3, fast=False, desc=None)
    assert found.index.tolist() == [[0, 4, 1], [1, 5, 0]]




@pytest.mark.parametrize("probe", ["logreg", "knn", "knn:k=10,t=0.07", "logreg:c=0.001"])
@pytest.mark.parametrize("protocol", ["full", "few"])
def test_every_probe_in_every_protocol_through_bench_run(probe, protocol, cifar_folder, tmp_path):
    out = tmp_path / "runs.csv"
    few = ["--per-class", "3", "--draws", "2"] if protocol == "few" else []
    result = invoke("run", "cifar10", "--features", "pixels", "--data-dir", str(cifar_folder), "--results",
                    str(out), "--val-size", "20", "--protocol", protocol, "--probe", probe, *few)
    assert result.exception is None, result.output
    row = list(csv.DictReader(open(out)))[-1]
    assert row["probe"] == probe and float(row["test_acc"]) > 30
    if probe.startswith("knn"):
        assert row["C"] == "" and int(row["k"]) >= 1 and float(row["t"]) > 0 and "exact" in result.output
        assert row["gap"] == row["search_gap"] == ""  # exact: no certificate to record, not a gap of 0
    else:
        assert float(row["C"]) > 0 and float(row["gap"]) <= 1e-3 and row["k"] == ""
    if probe.endswith("k=10,t=0.07"):
        assert row["k"] == "10" and row["t"] == "0.07"
    if probe.endswith("c=0.001"):
        assert float(row["C"]) == 0.001


@pytest.mark.parametrize("args, message", [
    (["--probe", "forest"], "unknown probe 'forest'"),
    (["--probe", "knn:k=0"], "k must be a positive integer, got 0"),
    (["--probe", "knn:k=2.5"], "k must be a positive integer, got '2.5'"),
    (["--probe", "knn:t=inf"], "t must be a positive finite number, got inf"),
    (["--probe", "svm:c=nan"], "c must be a positive finite number, got nan"),
    (["--probe", "knn:c=1"], "unknown option 'c=1'"),
    (["--probe", "logreg:c=abc"], "c must be a positive finite number, got 'abc'"),
    (["--probe", "logreg", "--solver", "liblinear"], "--solver liblinear is the svm probe's reference"),
])
def test_bad_probe_specs_are_one_line_before_work(args, message, monkeypatch, capsys):
    code, _, _, err = console(monkeypatch, capsys, "run", "cifar10", "--features", "pixels", *args)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and message in lines[0], err


def test_knn_rescoring_by_one_dense_product_finds_the_gathered_neighbours(monkeypatch):
    """Few rows against the candidates (a few-label draw) are re-scored by one float64 product per block instead
    of a gather per query: the same neighbours, duplicates tied by index, similarities equal to rounding."""
    from benchmark.probe import knn

    rng = torch.Generator().manual_seed(0)
    X = torch.randn(300, 64, generator=rng)
    X[150:160] = X[:10]  # exact duplicates: ties that go to the lower index
    X, Q = knn.normalised(X), knn.normalised(torch.randn(90, 64, generator=rng) + X[:90])
    dense = knn.neighbours(X, Q, 50, desc=None)
    monkeypatch.setattr(knn, "DENSE_RATIO", 0)
    gathered = knn.neighbours(X, Q, 50, desc=None)
    assert torch.equal(dense.index, gathered.index)
    torch.testing.assert_close(dense.similarity, gathered.similarity, rtol=0, atol=1e-15)


@pytest.mark.parametrize("window", [4, 0.01])
def test_knn_windows_hold_every_true_neighbour_among_near_ties(window, monkeypatch):
    """Rows crowded within float32 rounding of each other: each query's window (or, when too wide, the rung above)
    still finds a float64 stable sort's top k, ties by the lower index; a query alone gets the same numbers."""
    monkeypatch.setattr(knn, "DENSE_RATIO", 0)  # the gathered re-scoring
    monkeypatch.setattr(knn, "WINDOW", window)
    g = torch.Generator().manual_seed(1)
    base = torch.randn(6, 512, generator=g)
    train = knn.normalised(base.repeat(100, 1) + 1e-4 * torch.randn(600, 512, generator=g))
    train[300:310] = train[:10]  # exact duplicates
    queries = knn.normalised(base[:4] + 1e-4 * torch.randn(4, 512, generator=g))
    reference = torch.sort(queries.double() @ train.double().T, dim=1, descending=True, stable=True)
    for k in (1, 30, 120):
        found = knn.neighbours(train, queries, k, desc=None)
        assert torch.equal(found.index, reference.indices[:, :k])
        torch.testing.assert_close(found.similarity, reference.values[:, :k], rtol=0, atol=1e-14)
        alone = knn.neighbours(train, queries[2:3], k, desc=None)
        assert torch.equal(alone.index, found.index[2:3])
        if window == 4:  # re-scored one by one, not by a product whose rounding depends on the block
            assert torch.equal(alone.similarity, found.similarity[2:3])


def test_knn_rescoring_without_torch_compile_warns_and_finds_the_same(monkeypatch):
    monkeypatch.setattr(knn, "DENSE_RATIO", 0)
    g = torch.Generator().manual_seed(2)
    train, queries = knn.normalised(torch.randn(400, 32, generator=g)), knn.normalised(torch.randn(20, 32, generator=g))
    compiled = knn.neighbours(train, queries, 10, desc=None)

    def broken(fn, **kw):
        def fail(*args):
            raise RuntimeError("no C++ compiler")
        return fail

    knn._gathered_dot.cache_clear()
    monkeypatch.setattr(torch, "compile", broken)
    try:
        with pytest.warns(UserWarning, match="kNN re-scoring: torch.compile failed"):
            eager = knn.neighbours(train, queries, 10, desc=None)
    finally:
        knn._gathered_dot.cache_clear()
    assert torch.equal(compiled.index, eager.index)
    torch.testing.assert_close(compiled.similarity, eager.similarity, rtol=0, atol=1e-15)
