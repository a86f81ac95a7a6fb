"""Multinomial logistic regression solved in PyTorch on CPU or CUDA, stopped on a certified duality gap.

Objective (X~ = [X, 1]: the intercept is penalised as a constant feature, exactly as the SVM's):

    P(W) = 0.5 * |W~|^2 + C * sum_i [logsumexp(W~ x~_i) - (W~ x~_i)_{y_i}]

so a C means the same as scikit-learn's ``LogisticRegression(C=C, fit_intercept=False)`` on X
with a column of ones appended.

Certificate: the Fenchel dual. With p_i = softmax(W~ x~_i) the dual point is
u_i = C (p_i - e_{y_i}), whose value is D = C * sum_i H(p_i) - 0.5 * |G - W~|^2 (H the entropy,
G the primal gradient, so G - W~ = sum_i u_i x~_i^T). P - D >= 0, and 0 exactly at the optimum;
a fit stops when (P - D) / P <= tol, evaluated in float64 at freshly computed scores, as the SVM.

Method: line-search Newton with conjugate-gradient Hessian products, the SVM's machinery
(``svm.Operand`` for bfloat16 or float32 products, ``svm.Spectrum`` for the preconditioner, the
same precision ladder when the products get too coarse to descend). The Hessian product is
H v = v + C X~^T [P * Z - P * rowsum(P * Z)] with Z = X~ v^T; the preconditioner is block
diagonal over classes, M_j = I + C rho_j V diag(lambda) V^T, rho_j the share of the weights
p_ij (1 - p_ij) |x~_i|^2 that class j holds.
"""

from __future__ import annotations

import time

import torch

from . import params
from .svm import LADDER, STALL_ITERS, Operand, Spectrum, _Rung, default_precision


def objective_terms(Z: torch.Tensor, Y: torch.Tensor, W, b, C: float):
    """(primal, dual, probabilities) in float64 from scores Z = X~ W~^T, one-hot Y and the gradient's parts."""
    Z = Z.double()
    lse = torch.logsumexp(Z, 1)
    P = torch.exp(Z - lse[:, None])
    loss = (lse - (Z * Y).sum(1)).sum()
    entropy = -(P * torch.log(P.clamp_min(1e-300))).sum()
    primal = 0.5 * (W.double().pow(2).sum() + b.double().pow(2).sum()) + C * loss
    return primal, C * entropy, P


def relative_gap(primal, dual_entropy, W, b, G, gb) -> float:
    dual = dual_entropy - 0.5 * ((G.double() - W.double()).pow(2).sum() + (gb.double() - b.double()).pow(2).sum())
    return float((primal - dual) / primal)


class LogRegSolver:
    """Multinomial logistic regression; ``fit`` stops at relative duality gap ``tol`` (certified)."""

    def __init__(self, C: float = 1.0, tol: float = 1e-3, max_iter: int = 200, max_cg: int = 250,
                 precision: str = "auto", time_limit: float | None = None):
        if precision not in ("auto", "float32", "mixed"):
            raise ValueError(f"precision must be auto, float32 or mixed, got {precision!r}")
        self.C, self.tol = params.positive_finite("C", C), params.positive_finite("tol (relative duality gap)", tol)
        self.max_iter, self.max_cg = params.positive_int("max_iter", max_iter), max_cg
        self.precision, self.time_limit = precision, time_limit
        self.coef_ = self.intercept_ = None
        self.gap_ = float("nan")
        self.certified_, self.passes_, self.n_iter_, self.precision_ = False, 0.0, 0, ""

    @property
    def gap(self) -> float:
        return float(self.gap_)

    def decision_function(self, X: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(X, self.coef_.to(X.dtype), self.intercept_.to(X.dtype)).float()

    def predict(self, X: torch.Tensor) -> torch.Tensor:
        return self.decision_function(X).argmax(1)

    def predict_proba(self, X: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.decision_function(X).double(), 1).float()

    def fit(self, X: torch.Tensor, y: torch.Tensor, n_classes: int | None = None,
            warm_start: tuple[torch.Tensor, torch.Tensor] | None = None, operand: Operand | None = None,
            spectrum: Spectrum | None = None):
        if X.dtype != torch.float32 or X.ndim != 2:
            raise ValueError("X must be a 2-D float32 tensor")
        start = time.perf_counter()
        k = int(n_classes or int(y.max()) + 1)
        rung = _Rung(X, default_precision(X.device) if self.precision == "auto" else self.precision, operand)
        Y = torch.zeros(len(y), k, dtype=torch.float64, device=X.device)
        Y[torch.arange(len(y), device=X.device), y.to(X.device)] = 1.0
        if warm_start is None:
            W, b = torch.zeros(k, X.shape[1], device=X.device), torch.zeros(k, device=X.device)
        else:
            W, b = warm_start[0].clone().to(X.device, torch.float32), warm_start[1].clone().to(X.device, torch.float32)
        self.passes_, self.n_iter_ = 0.0, 0
        self._row_norms = torch.linalg.vector_norm(X, dim=1).double().pow(2) + 1.0 if spectrum is not None else None
        W, b = W.to(rung.dtype), b.to(rung.dtype)
        Z = rung.exact.times(W, b)
        self.passes_ += rung.exact.share
        history, gap = [], float("inf")
        while True:
            primal, entropy, P = objective_terms(Z, Y, W, b, self.C)
            G, gb = self._gradient(rung, W, b, P, Y)
            gap = relative_gap(primal, entropy, W, b, G, gb)
            if gap <= self.tol:
                gap, Z = self._certificate(X, rung, W, b, Y)
                if gap <= self.tol:
                    break
                if rung.name != LADDER[-1]:  # the working sums could not resolve the gap: finish in float64
                    rung, history = _Rung(X, LADDER[-1]), []
                    W, b, Z = W.to(rung.dtype), b.to(rung.dtype), Z.to(rung.dtype)
                    continue
            if self.n_iter_ >= self.max_iter or (
                    self.time_limit is not None and time.perf_counter() - start > self.time_limit):
                break
            history = (history + [gap])[-(STALL_ITERS + 1):]
            stalled = len(history) > STALL_ITERS and history[-1] > 0.5 * history[0]
            S, Sb = self._cg(rung.cg, P, G, gb, spectrum)
            XS = rung.exact.times(S, Sb)
            self.passes_ += rung.exact.share
            step = self._line_search(Z, Y, W, b, S, Sb, XS, G, gb)
            self.n_iter_ += 1
            if step == 0.0 or stalled:
                if rung.name == LADDER[-1]:
                    if step == 0.0:
                        break  # no descent even in float64: report the gap reached
                else:  # products too coarse at this C: go on one rung up
                    rung, history = _Rung(X, LADDER[LADDER.index(rung.name) + 1]), []
                    W, b = W.to(rung.dtype), b.to(rung.dtype)
                    Z = rung.exact.times(W, b)
                    self.passes_ += rung.exact.share
                    continue
            W, b, Z = W + step * S.to(W.dtype), b + step * Sb.to(b.dtype), Z + step * XS.to(Z.dtype)
        if gap > self.tol:
            gap, Z = self._certificate(X, rung, W, b, Y)
        if not (torch.isfinite(W).all() and torch.isfinite(b).all()):
            raise FloatingPointError(f"logistic regression diverged at C={self.C:g} (non-finite weights)")
        self.coef_, self.intercept_ = W.float(), b.float()
        self.gap_, self.precision_, self.certified_ = gap, rung.name, gap <= self.tol
        return self

    def objective(self, X: torch.Tensor, y: torch.Tensor) -> float:
        """The primal objective in float64, for comparing solvers."""
        return objective(X, y, self.coef_, self.intercept_, self.C)

    # ------------------------------------------------------------------ internals
    def _gradient(self, rung: _Rung, W, b, P, Y):
        Rw, Rb = rung.exact.t_times((P - Y).to(rung.dtype))
        self.passes_ += rung.exact.share
        return W + self.C * Rw.to(W.dtype), b + self.C * Rb.to(b.dtype)

    def _certificate(self, X, rung: _Rung, W, b, Y):
        """The gap at scores and gradient recomputed in float64 (two passes); returns (gap, scores)."""
        exact = Operand.of(X, "float64")
        Z = exact.times(W, b)
        primal, entropy, P = objective_terms(Z, Y, W, b, self.C)
        Rw, Rb = exact.t_times(P - Y)
        self.passes_ += 2 * exact.share
        G, gb = W.double() + self.C * Rw, b.double() + self.C * Rb
        return relative_gap(primal, entropy, W, b, G, gb), Z.to(rung.dtype)

    def _cg(self, X: Operand, P, G, gb, spectrum):
        """Approximately solve H s = -g (all classes jointly) to |r| <= 0.1 |g|."""
        dtype, C = G.dtype, self.C
        Pw = P.to(dtype)
        precondition = self._preconditioner(P, spectrum)
        S, Sb = torch.zeros_like(G), torch.zeros_like(gb)
        R, Rb = -G, -gb
        Zr, Zb = precondition(R, Rb)
        D, Db = Zr.clone(), Zb.clone()
        rz = float((R * Zr).sum() + (Rb * Zb).sum())
        target = 0.01 * float(G.pow(2).sum() + gb.pow(2).sum())
        for _ in range(self.max_cg):
            if rz <= 0 or float(R.pow(2).sum() + Rb.pow(2).sum()) <= target:
                break
            Zd = X.times(D, Db).to(dtype)
            PZ = Pw * Zd
            HD, HDb = X.t_times(PZ - Pw * PZ.sum(1, keepdim=True))
            HD, HDb = D + C * HD.to(dtype), Db + C * HDb.to(dtype)
            self.passes_ += 2 * X.share
            dHd = float((D * HD).sum() + (Db * HDb).sum())
            if dHd < float(D.pow(2).sum() + Db.pow(2).sum()):  # impossible in exact arithmetic (H >= I)
                break
            alpha = rz / dHd
            S, Sb = S + alpha * D, Sb + alpha * Db
            R, Rb = R - alpha * HD, Rb - alpha * HDb
            Zr, Zb = precondition(R, Rb)
            rz_new = float((R * Zr).sum() + (Rb * Zb).sum())
            D, Db = Zr + (rz_new / rz) * D, Zb + (rz_new / rz) * Db
            rz = rz_new
        return S, Sb

    def _preconditioner(self, P, spectrum: Spectrum | None):
        if spectrum is None:
            return lambda R, Rb: (R, Rb)
        V, lam = spectrum.vectors, spectrum.values.double()
        weights = (P * (1.0 - P)).double()
        rho = (weights * self._row_norms[:, None]).sum(0) / self._row_norms.sum()
        scaled = self.C * rho[:, None] * lam[None, :]
        shrink = scaled / (1.0 + scaled)

        def apply(R, Rb):
            full = torch.cat([R, Rb[:, None]], 1).double()
            Zf = (full - ((full @ V) * shrink) @ V.T).to(R.dtype)
            return Zf[:, :-1], Zf[:, -1]

        return apply

    def _line_search(self, Z, Y, W, b, S, Sb, XS, G, gb) -> float:
        """Backtracking (Armijo, eta=0.01) on the float64 objective; the scores along s are known."""
        f0 = objective_terms(Z, Y, W, b, self.C)[0]
        slope = float((G.double() * S.double()).sum() + (gb.double() * Sb.double()).sum())
        if slope >= 0:
            return 0.0
        step = 1.0
        for _ in range(40):
            f = objective_terms(Z.double() + step * XS.double(), Y, W.double() + step * S.double(),
                                b.double() + step * Sb.double(), self.C)[0]
            if f <= f0 + 0.01 * step * slope:
                return step
            step *= 0.5
        return 0.0


def objective(X: torch.Tensor, y: torch.Tensor, W: torch.Tensor, b: torch.Tensor, C: float) -> float:
    """The primal objective of any linear model (W, b), e.g. scikit-learn's, in float64."""
    W, b = W.to(X.device, torch.float64), b.to(X.device, torch.float64)
    Y = torch.nn.functional.one_hot(y.to(X.device), W.shape[0]).double()
    return float(objective_terms(Operand.of(X, "float64").times(W, b), Y, W, b, C)[0])


def certify(X: torch.Tensor, y: torch.Tensor, W: torch.Tensor, b: torch.Tensor, C: float) -> float:
    """The relative duality gap of any linear model (W, b), in float64: two passes over X."""
    W, b = W.to(X.device, torch.float64), b.to(X.device, torch.float64)
    exact = Operand.of(X, "float64")
    Y = torch.nn.functional.one_hot(y.to(X.device), W.shape[0]).double()
    primal, entropy, P = objective_terms(exact.times(W, b), Y, W, b, C)
    Rw, Rb = exact.t_times(P - Y)
    return relative_gap(primal, entropy, W, b, W + C * Rw, b + C * Rb)
