import numpy as np
import pytest
import torch
from sklearn.svm import LinearSVC

from benchmark.probe.svm import SVMSolver


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
    ours = SVMSolver(C=C, tol=1e-4, precision=precision).fit(X, y)
    f_ref = objective(ref.coef_, ref.intercept_, X, y, C)
    f_ours = objective(ours.coef_, ours.intercept_, X, y, C)
    assert abs(f_ours - f_ref) / f_ref < 1e-4
    assert (ours.predict(X).numpy() == ref.predict(X.numpy())).mean() >= 0.99


def test_warm_start_reaches_same_solution_in_fewer_passes():
    X, y = toy(seed=1)
    cold = SVMSolver(C=0.05, tol=1e-4).fit(X, y)
    start = SVMSolver(C=0.02, tol=1e-4).fit(X, y)
    warm = SVMSolver(C=0.05, tol=1e-4).fit(X, y, warm_start=(start.coef_, start.intercept_))
    assert warm.passes_ < cold.passes_
    assert abs(objective(warm.coef_, warm.intercept_, X, y, 0.05) -
               objective(cold.coef_, cold.intercept_, X, y, 0.05)) / objective(cold.coef_, cold.intercept_, X, y, 0.05) < 1e-5


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        SVMSolver(C=0)
    with pytest.raises(ValueError):
        SVMSolver().fit(torch.zeros(3, 2, dtype=torch.float64), torch.zeros(3, dtype=torch.long))


def test_preconditioner_keeps_the_solution_and_saves_passes():
    from benchmark.probe.operand import Spectrum

    rng = np.random.default_rng(0)
    n, d = 1500, 300
    latent = rng.normal(size=(n, 10)) @ rng.normal(size=(10, d)) * 3  # strongly correlated features
    y = torch.from_numpy(rng.integers(0, 4, n))
    X = torch.from_numpy((latent + rng.normal(size=(n, d)) + np.eye(4)[y.numpy()] @ rng.normal(size=(4, d))).astype(np.float32))
    X = (X - X.mean(0)) / X.std(0)
    plain = SVMSolver(C=0.05, tol=1e-4).fit(X, y)
    pre = SVMSolver(C=0.05, tol=1e-4).fit(X, y, spectrum=Spectrum.of(X, rank=32))
    f_plain, f_pre = objective(plain.coef_, plain.intercept_, X, y, 0.05), objective(pre.coef_, pre.intercept_, X, y, 0.05)
    assert abs(f_pre - f_plain) / f_plain < 1e-4
    assert pre.passes_ < plain.passes_


# ---------------------------------------------------------------- the certified gap

def features(kind, n=600, d=48, k=4, seed=0):
    """Raw non-negative activations (a large common component, as pooled ReLU features), the same
    badly scaled (columns spanning 1e-3 to 1e3), or standardised."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    latent = rng.normal(size=(n, 8)) + rng.normal(size=(k, 8))[y] * 1.5
    X = np.maximum(latent @ rng.normal(size=(8, d)) + rng.normal(size=(n, d)) + 1.0, 0)
    if kind == "badly scaled":
        X = X * np.logspace(-3, 3, d)[rng.permutation(d)]
    if kind == "standardised":
        X = (X - X.mean(0)) / X.std(0)
    return torch.from_numpy(X.astype(np.float32)), torch.from_numpy(y)


def reference(X, y, C):
    """LinearSVC's dual coordinate descent run to a tight tolerance, and its own certified gap."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from benchmark.probe.svm import certify

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = LinearSVC(C=C, loss="squared_hinge", dual=True, tol=1e-8, max_iter=200_000).fit(X.numpy(), y.numpy())
    gap = float(certify(X, y, torch.from_numpy(ref.coef_), torch.from_numpy(ref.intercept_), C).max())
    return objective(ref.coef_, ref.intercept_, X, y, C), gap


def assert_matches_reference(model, X, y, C):
    """Within 1e-4 of LinearSVC where LinearSVC converged (its own gap <= 1e-6); where its coordinate
    descent did not (badly scaled columns at large C), no worse than LinearSVC."""
    f_ref, ref_gap = reference(X, y, C)
    f_ours = objective(model.coef_, model.intercept_, X, y, C)
    if ref_gap <= 1e-6:
        assert abs(f_ours - f_ref) / f_ref < 1e-4, (C, f_ours, f_ref)
    else:
        assert f_ours <= f_ref * (1 + 1e-4), (C, f_ours, f_ref, ref_gap)


@pytest.mark.parametrize("kind", ["raw", "badly scaled", "standardised"])
@pytest.mark.parametrize("C", [1e-6, 1e-4, 1e-2, 1.0])
def test_every_fit_certifies_its_gap_and_matches_liblinear(kind, C):
    from benchmark.probe.operand import Spectrum
    from benchmark.probe.svm import certify

    X, y = features(kind)
    for spectrum in (None, Spectrum.of(X, rank=16)):
        model = SVMSolver(C=C).fit(X, y, spectrum=spectrum)
        gap = certify(X, y, model.coef_, model.intercept_, C)  # recomputed independently, in float64
        assert model.certified_ and float(gap.max()) <= 1e-3, (kind, C, model.gap_)
        torch.testing.assert_close(gap, model.gap_, rtol=1e-2, atol=1e-5)  # float32 products, float64 sums
        assert_matches_reference(model, X, y, C)


@pytest.mark.parametrize("kind", ["raw", "badly scaled", "standardised"])
def test_a_warm_start_is_certified_alike(kind):
    X, y = features(kind, seed=1)
    low = SVMSolver(C=1e-3).fit(X, y)
    for C in (1e-2, 1e-1, 1.0):  # warm along the grid, as the C search does
        warm = SVMSolver(C=C).fit(X, y, warm_start=(low.coef_, low.intercept_))
        assert warm.certified_ and warm.gap <= 1e-3
        assert_matches_reference(warm, X, y, C)
        low = warm


def test_a_fit_stopped_by_its_limit_says_so():
    X, y = features("badly scaled", seed=2)
    stopped = SVMSolver(C=1.0, max_iter=1).fit(X, y)
    assert not stopped.certified_ and stopped.gap > 1e-3
