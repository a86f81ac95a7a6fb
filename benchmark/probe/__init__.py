"""The probes: the paper's L2-SVM, multinomial logistic regression and weighted kNN; the one
hyper-parameter search; the evaluation protocols.

``svm`` and ``logreg`` are the certified solvers (PyTorch, CPU or CUDA), ``knn`` the exact
neighbour search, ``solver`` the settings that pick one, ``search`` chooses C (or k and T)
on validation rows for every protocol, ``protocols`` runs ``full``, ``few`` and
``svhn-1000`` on cached features, ``compare`` pairs two encoders, ``solver_timing`` times
the solvers, ``estimators`` gives the probes scikit-learn's face. Imports ``data`` (the
feature cache) and ``core`` only.

From a notebook::

    from benchmark.probe import L2SVM, LogReg, KNN
    model = L2SVM(C=1e-4).fit(X, y)        # numpy or torch X (n, d), labels of any values
"""

from .protocols import ProbeResult, run_probe, validation_split
from .solver import ProbeConfig

__all__ = ["KNN", "L2SVM", "LogReg", "ProbeConfig", "ProbeResult", "run_probe", "validation_split"]
ESTIMATORS = ("KNN", "L2SVM", "LogReg")


def __getattr__(name: str):
    """The estimators on first use: scikit-learn's import is a third of every command's start-up otherwise."""
    if name in ESTIMATORS:
        from . import estimators

        return getattr(estimators, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
