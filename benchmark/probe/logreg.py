"""Multinomial logistic regression solved in PyTorch on CPU or CUDA, stopped on a certified duality gap.

Objective (X~ = [X, 1]: the intercept is penalised as a constant feature, exactly as the SVM's):

    P(W) = 0.5 * |W~|^2 + C * sum_i [logsumexp(W~ x~_i) - (W~ x~_i)_{y_i}]

so a C means the same as scikit-learn's ``LogisticRegression(C=C, fit_intercept=False)`` on X
with a column of ones appended.

Certificate: the Fenchel dual. With p_i = softmax(W~ x~_i) the dual point is
u_i = C (p_i - e_{y_i}), whose value is D = C * sum_i H(p_i) - 0.5 * |G - W~|^2 (H the entropy,
G the primal gradient, so G - W~ = sum_i u_i x~_i^T). P - D >= 0, and 0 exactly at the optimum;
a fit stops when (P - D) / P <= tol, evaluated in float64 at freshly computed scores, as the SVM.

Method: ``newton.Newton``, the line-search Newton-CG shared with the SVM, with the whole model
one joint problem. The Hessian product is H v = v + C X~^T [P * Z - P * rowsum(P * Z)] with
Z = X~ v^T; the preconditioner is block diagonal over classes, M_j = I + C rho_j V diag(lambda) V^T,
rho_j the share of the weights p_ij (1 - p_ij) |x~_i|^2 that class j holds. This module supplies the
loss (``Softmax``) and the estimator-facing ``LogRegSolver``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .newton import LinearSolver, Loss
from .operand import Operand, as_rows


def objective_terms(Z: torch.Tensor, Y: torch.Tensor, W, b, C: float, reduce=lambda t: t):
    """(primal, dual, probabilities) in float64 from scores Z = X~ W~^T, one-hot Y and the gradient's parts
    (``reduce`` sums the row sums of a sharded matrix over its processes)."""
    Z = Z.double()
    lse = torch.logsumexp(Z, 1)
    P = torch.exp(Z - lse[:, None])
    loss, entropy = reduce(torch.stack([(lse - (Z * Y).sum(1)).sum(), -(P * torch.log(P.clamp_min(1e-300))).sum()]))
    primal = 0.5 * (W.double().pow(2).sum() + b.double().pow(2).sum()) + C * loss
    return primal, C * entropy, P


def relative_gap(primal, dual_entropy, W, b, G, gb) -> float:
    dual = dual_entropy - 0.5 * ((G.double() - W.double()).pow(2).sum() + (gb.double() - b.double()).pow(2).sum())
    return float((primal - dual) / primal)


@dataclass
class Scores:
    """The softmax loss's state at scores z: z itself and the class probabilities, in float64."""

    z: torch.Tensor
    P: torch.Tensor


class Softmax(Loss):
    """Multinomial cross-entropy, one problem over all classes: the residual C (P - Y), the curvature the
    softmax's Jacobian."""

    joint = True

    def __init__(self, C: float, y: torch.Tensor, k: int, device, reduce=lambda t: t):
        self.C, self.curvature_scale, self.reduce = C, C, reduce
        self.Y = torch.nn.functional.one_hot(y.to(device), k).double()

    def state(self, z):
        return Scores(z, torch.softmax(z.double(), 1))

    def residual(self, state):
        return self.C * (state.P - self.Y).to(state.z.dtype)

    def gap(self, W, b, G, gb, state):
        primal, entropy, _ = objective_terms(state.z, self.Y, W, b, self.C, self.reduce)
        return torch.tensor([relative_gap(primal, entropy, W, b, G, gb)], dtype=torch.float64)

    def objective(self, z, W, b):
        return objective_terms(z, self.Y, W, b, self.C, self.reduce)[0].reshape(1)

    def weights(self, state):
        return state.P * (1.0 - state.P)

    def restrict(self, state, index):
        return Scores(state.z[index], state.P[index])

    def hessian_times(self, X, state, D, Db):
        P = state.P.to(D.dtype)
        PZ = P * X.times(D, Db).to(D.dtype)
        HD, HDb = X.t_times(PZ - P * PZ.sum(1, keepdim=True))
        return D + self.C * HD.to(D.dtype), Db + self.C * HDb.to(Db.dtype)

    def certificate(self, X, W, b):
        """The gap at scores and gradient recomputed in float64 (two passes)."""
        W, b = W.double(), b.double()
        exact = Operand.of(X, "float64")
        Z = exact.times(W, b)
        primal, entropy, P = objective_terms(Z, self.Y, W, b, self.C, self.reduce)
        Rw, Rb = exact.t_times(P - self.Y)
        gap = relative_gap(primal, entropy, W, b, W + self.C * Rw, b + self.C * Rb)
        return Z, torch.tensor([gap], dtype=torch.float64)


class LogRegSolver(LinearSolver):
    """Multinomial logistic regression; ``fit`` stops at relative duality gap ``tol`` (certified)."""

    loss = Softmax

    def __init__(self, C: float = 1.0, tol: float = 1e-3, max_iter: int = 200, max_cg: int = 250,
                 precision: str = "auto", time_limit: float | None = None):
        super().__init__(C, tol, max_iter, max_cg, precision, time_limit)

    def predict_proba(self, X: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.decision_function(X).double(), 1).float()

    def objective(self, X: torch.Tensor, y: torch.Tensor) -> float:
        """The primal objective in float64, for comparing solvers."""
        return objective(X, y, self.coef_, self.intercept_, self.C)


def objective(X: torch.Tensor, y: torch.Tensor, W: torch.Tensor, b: torch.Tensor, C: float) -> float:
    """The primal objective of any linear model (W, b), e.g. scikit-learn's, in float64."""
    W, b = W.to(X.device, torch.float64), b.to(X.device, torch.float64)
    Y = torch.nn.functional.one_hot(y.to(X.device), W.shape[0]).double()
    return float(objective_terms(Operand.of(X, "float64").times(W, b), Y, W, b, C)[0])


def certify(X: torch.Tensor, y: torch.Tensor, W: torch.Tensor, b: torch.Tensor, C: float) -> float:
    """The relative duality gap of any linear model (W, b), in float64: two passes over X."""
    X = as_rows(X)
    W, b = W.to(X.device, torch.float64), b.to(X.device, torch.float64)
    return float(Softmax(C, y, W.shape[0], X.device, X.reduce).certificate(X, W, b)[1][0])
