"""A linear L2-SVM (squared hinge, one-vs-rest) solved in PyTorch on CPU or CUDA, with a certified gap.

Objective, for every class j at once (targets t_ij = +1 for class j, -1 otherwise):

    P_j(w, b) = 0.5 * (|w|^2 + b^2) + C * sum_i max(0, 1 - t_ij (w . x_i + b))^2

This is liblinear's L2-regularised squared-hinge primal with LinearSVC's default
intercept convention (a constant feature 1 appended, ``intercept_scaling=1``), so the
intercept *is* penalised and a C means the same as in LinearSVC.

Stopping: every class stops on its certified relative duality gap, (P_j - D_j) / P_j <= tol.
The dual point comes from the primal, a_i = 2C max(0, 1 - t_i (w.x_i + b)), and with
v = sum_i a_i t_i x~_i = w~ - grad P (no extra pass over X), D = sum a - |v|^2/2 - sum a^2/(4C).
Sums are accumulated in float64, and the gap that ends a fit is always evaluated at freshly
computed margins X w with the gradient product X^T r summed in float64, so float32 drift or
cancellation cannot fake convergence. The rule means the same
from a cold or a warm start, unlike liblinear's gradient rule relative to the gradient at
w = 0, which a warm start along the C grid can meet far from the optimum.

Method: ``newton.Newton``, the line-search Newton-CG shared with logistic regression, as
liblinear's primal solver: every class is its own problem (its own gap, step and CG), CG runs on the
active rows (positive loss) only, and in float64 a narrow X gets exact Newton steps. This module
supplies the squared hinge (``SquaredHinge``) and the estimator-facing ``SVMSolver``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .newton import LinearSolver, Loss
from .operand import Operand, as_rows


def one_vs_rest(y: torch.Tensor, k: int, device, dtype=torch.float32) -> torch.Tensor:
    T = torch.full((len(y), k), -1.0, device=device, dtype=dtype)
    T[torch.arange(len(y), device=device), y.to(device)] = 1.0
    return T


def duality_gap(W, b, G, gb, margins, C, reduce=lambda t: t) -> tuple[torch.Tensor, torch.Tensor]:
    """Per class: relative gap (P - D) / P and P, in float64, from the gradient at (W, b) and the hinge margins
    (``reduce`` sums the row sums of a sharded matrix over its processes)."""
    m, W, b = margins.double(), W.double(), b.double()
    v, vb = W - G.double(), b - gb.double()  # v = sum_i a_i t_i x~_i
    sums = reduce(torch.stack([m.pow(2).sum(0), m.sum(0)]))
    hinge = C * sums[0]
    primal = 0.5 * (W.pow(2).sum(1) + b.pow(2)) + hinge
    dual = 2.0 * C * sums[1] - 0.5 * (v.pow(2).sum(1) + vb.pow(2)) - hinge
    return (primal - dual) / primal, primal


class SquaredHinge(Loss):
    """One-vs-rest squared hinge: the state is the hinge margins m = max(0, 1 - t z), the residual -2C m t, the
    curvature 2C on the active rows (m > 0) of each class."""

    joint = False

    def __init__(self, C: float, y: torch.Tensor, k: int, device, reduce=lambda t: t):
        self.C, self.curvature_scale, self.reduce = C, 2.0 * C, reduce
        self.T = one_vs_rest(y, k, device)
        self._targets = {torch.float32: self.T}

    def targets(self, dtype) -> torch.Tensor:
        if dtype not in self._targets:
            self._targets[dtype] = self.T.to(dtype)
        return self._targets[dtype]

    def state(self, z):
        return torch.clamp_min(1.0 - self.targets(z.dtype) * z, 0.0)

    def residual(self, m):
        return -2.0 * self.C * m * self.targets(m.dtype)

    def gap(self, W, b, G, gb, m):
        return duality_gap(W, b, G, gb, m, self.C, self.reduce)[0]

    def objective(self, z, W, b):
        m = torch.clamp_min(1.0 - self.targets(z.dtype) * z, 0.0).double()
        return 0.5 * (W.double().pow(2).sum(1) + b.double().pow(2)) + self.C * self.reduce(m.pow(2).sum(0))

    def weights(self, m):
        return (m > 0).to(m.dtype)

    def restrict(self, m, index):
        return m[index]

    def hessian_times(self, X, m, P, Pb):
        HP, HPb = X.t_times((m > 0).to(m.dtype) * X.times(P, Pb).to(m.dtype))
        return P + 2.0 * self.C * HP.to(P.dtype), Pb + 2.0 * self.C * HPb.to(Pb.dtype)

    def certificate(self, X, W, b):
        """Both products (X w, X^T r) in float64: at the optimum 2C X~^T r cancels w, and float32 sums of large
        terms could hide or fake a gap (seen with columns spanning 1e-3 to 1e3)."""
        exact, T = Operand.of(X, "float64"), self.targets(torch.float64)
        z = exact.times(W, b)
        m = torch.clamp_min(1.0 - T * z, 0.0)
        Rw, Rb = exact.t_times(m * T)
        return z, duality_gap(W, b, W - 2.0 * self.C * Rw, b - 2.0 * self.C * Rb, m, self.C, self.reduce)[0]

    def direct_hessian(self, X, m):
        H = X.gram((m > 0).to(X.result)) * (2.0 * self.C)
        H.diagonal(dim1=1, dim2=2).add_(1.0)
        return H


class SVMSolver(LinearSolver):
    """One-vs-rest L2-SVM; ``fit`` stops when every class's relative duality gap is at most ``tol``."""

    loss = SquaredHinge

    def objective(self, X: torch.Tensor, y: torch.Tensor) -> float:
        """Sum over classes of the primal objective, in float64, for comparing solvers."""
        return float(objective(X, y, self.coef_, self.intercept_, self.C).sum())


def objective(X: torch.Tensor, y: torch.Tensor, W: torch.Tensor, b: torch.Tensor, C: float) -> torch.Tensor:
    """Per-class primal objective of any linear model (W, b) on (X, y), in float64."""
    T = one_vs_rest(y, W.shape[0], X.device, torch.float64)
    m = torch.clamp_min(1.0 - T * Operand.of(X, "float64").times(W, b), 0.0)
    return 0.5 * (W.double().pow(2).sum(1) + b.double().pow(2)) + C * m.pow(2).sum(0)


def certify(X: torch.Tensor, y: torch.Tensor, W: torch.Tensor, b: torch.Tensor, C: float) -> torch.Tensor:
    """Per-class relative duality gap of any linear model (W, b), e.g. LinearSVC's, in float64: two passes over X."""
    X = as_rows(X)
    W, b = W.to(X.device, torch.float64), b.to(X.device, torch.float64)
    return SquaredHinge(C, y, W.shape[0], X.device, X.reduce).certificate(X, W, b)[1].cpu()
