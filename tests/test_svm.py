import numpy as np
import pytest
import torch
from sklearn.svm import LinearSVC

from benchmark.probe.svm import L2SVM


def toy(n=1500, d=200, k=5, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, d)) * 0.3
    y = rng.integers(0, k, n)
    X = (centers[y] + rng.normal(size=(n, d))).astype(np.float32)
    X = (X - X.mean(0)) / X.std(0)
    return torch.from_numpy(X), torch.from_numpy(y)


def objective(coef, intercept, X, y, C):
    """liblinear's primal, summed over one-vs-rest classes, in float64."""
    X, coef, intercept = X.double(), torch.as_tensor(coef).double(), torch.as_tensor(intercept).double()
    T = -torch.ones(len(y), coef.shape[0], dtype=torch.float64)
    T[torch.arange(len(y)), y] = 1
    margin = torch.clamp_min(1 - T * (X @ coef.T + intercept), 0)
    return float(0.5 * (coef.pow(2).sum() + intercept.pow(2).sum()) + C * margin.pow(2).sum())


@pytest.mark.parametrize("C", [1e-3, 1e-2, 1e-1])
@pytest.mark.parametrize("precision", ["float32", "mixed"])
def test_parity_with_liblinear(C, precision):
    X, y = toy()
    ref = LinearSVC(C=C, loss="squared_hinge", dual=False, tol=1e-8, max_iter=10000).fit(X.numpy(), y.numpy())
    ours = L2SVM(C=C, tol=1e-4, precision=precision).fit(X, y)
    f_ref = objective(ref.coef_, ref.intercept_, X, y, C)
    f_ours = objective(ours.coef_, ours.intercept_, X, y, C)
    assert abs(f_ours - f_ref) / f_ref < 1e-4
    assert (ours.predict(X).numpy() == ref.predict(X.numpy())).mean() >= 0.99


def test_warm_start_reaches_same_solution_in_fewer_passes():
    X, y = toy(seed=1)
    cold = L2SVM(C=0.05, tol=1e-4).fit(X, y)
    start = L2SVM(C=0.02, tol=1e-4).fit(X, y)
    warm = L2SVM(C=0.05, tol=1e-4).fit(X, y, warm_start=(start.coef_, start.intercept_))
    assert warm.passes_ < cold.passes_
    assert abs(objective(warm.coef_, warm.intercept_, X, y, 0.05) -
               objective(cold.coef_, cold.intercept_, X, y, 0.05)) / objective(cold.coef_, cold.intercept_, X, y, 0.05) < 1e-5


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        L2SVM(C=0)
    with pytest.raises(ValueError):
        L2SVM().fit(torch.zeros(3, 2, dtype=torch.float64), torch.zeros(3, dtype=torch.long))


def test_preconditioner_keeps_the_solution_and_saves_passes():
    from benchmark.probe.svm import Spectrum

    rng = np.random.default_rng(0)
    n, d = 1500, 300
    latent = rng.normal(size=(n, 10)) @ rng.normal(size=(10, d)) * 3  # strongly correlated features
    y = torch.from_numpy(rng.integers(0, 4, n))
    X = torch.from_numpy((latent + rng.normal(size=(n, d)) + np.eye(4)[y.numpy()] @ rng.normal(size=(4, d))).astype(np.float32))
    X = (X - X.mean(0)) / X.std(0)
    plain = L2SVM(C=0.05, tol=1e-4).fit(X, y)
    pre = L2SVM(C=0.05, tol=1e-4).fit(X, y, spectrum=Spectrum.of(X, rank=32))
    f_plain, f_pre = objective(plain.coef_, plain.intercept_, X, y, 0.05), objective(pre.coef_, pre.intercept_, X, y, 0.05)
    assert abs(f_pre - f_plain) / f_plain < 1e-4
    assert pre.passes_ < plain.passes_
