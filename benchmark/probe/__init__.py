"""The linear probe: a regularised L2-SVM, the one C search, and the evaluation protocols.

``svm.L2SVM`` is the solver (liblinear's squared-hinge objective in PyTorch), ``search``
chooses C on validation rows for every protocol, ``protocols`` runs ``full``, ``few`` and
``svhn-1000`` on cached features, ``compare`` pairs two encoders, ``solver_timing`` times
the solvers. Imports ``data`` (the feature cache) and ``core`` only.

From a notebook::

    from benchmark.probe import L2SVM
    model = L2SVM(C=1e-4).fit(X, y)        # X: float32 tensor (n, d), y: int64 labels
"""

from .protocols import ProbeResult, run_probe, validation_split
from .solver import ProbeConfig
from .svm import L2SVM

__all__ = ["L2SVM", "ProbeConfig", "ProbeResult", "run_probe", "validation_split"]
