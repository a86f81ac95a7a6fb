"""A linear L2-SVM (squared hinge, one-vs-rest) solved in PyTorch on CPU or CUDA.

Objective, for every class j at once (targets t_ij = +1 for class j, -1 otherwise):

    f_j(w, b) = 0.5 * (|w|^2 + b^2) + C * sum_i max(0, 1 - t_ij (w . x_i + b))^2

This is liblinear's L2-regularised squared-hinge primal with LinearSVC's default
intercept convention (a constant feature 1 appended, ``intercept_scaling=1``), so the
intercept *is* penalised and a C means the same as in LinearSVC.

Method: line-search Newton with conjugate-gradient Hessian-vector products restricted to
the active set (rows with positive loss), as liblinear's primal solver. Costs are passes
over X: one for the gradient, two per CG iteration; the line search reuses ``X s``
accumulated during CG and costs no pass. Products use the layouts measured fastest on
CPU (``F.linear`` for X @ W, ``R.T @ X`` for the transpose product).

Stopping: liblinear's rule, |grad_j| <= tol * max(min(pos_j, neg_j), 1) / n * |grad_j(0)|,
or, for a class whose gradient float32 cannot resolve that finely, once a Newton step
lowers its objective by less than float32 resolution (``STALL``, relative).

Preconditioning: standardised image features are strongly correlated, so X^T X has a few
huge eigenvalues and plain CG needs hundreds of steps. ``Spectrum`` (a randomized rank-r
eigen-decomposition of X^T X, a few passes, computed once per matrix and shared along the
C grid) gives the preconditioner M = I + 2C rho V diag(lambda) V^T per class, rho the
class's active fraction; applying M^-1 costs O(d r) per class and no pass over X.

Precision: ``float32`` (default), or ``mixed``: Newton iterations on a bfloat16 copy of X
(half the bytes per pass) down to a coarse tolerance, then a float32 finish. The bfloat16
copy is the only extra memory (0.5x the float32 matrix).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

MIXED_COARSE_TOL = 1e-2
STALL = 1e-7


@dataclass
class Spectrum:
    """Top eigenpairs of X^T X: X^T X ~ V diag(values) V^T."""

    vectors: torch.Tensor  # (d, r), orthonormal columns
    values: torch.Tensor  # (r,)

    @classmethod
    def of(cls, X: torch.Tensor, rank: int = 128, power_iters: int = 2, seed: int = 0) -> "Spectrum":
        """Randomized range finder with power iterations (Halko et al. 2011): 2 * (power_iters + 1) + 1 passes."""
        g = torch.Generator(device="cpu").manual_seed(seed)
        Q = torch.randn(X.shape[1], min(rank, X.shape[1]), generator=g).to(X.device, X.dtype)
        for _ in range(power_iters + 1):
            Q, _ = torch.linalg.qr((F.linear(X, Q.T).T @ X).T)  # X^T (X Q)
        B = F.linear(X, Q.T)  # X Q, (n, r)
        values, U = torch.linalg.eigh((B.T @ B).double())
        return cls((Q.double() @ U).float(), values.clamp_min(0).float())


class L2SVM:
    def __init__(self, C: float = 1.0, tol: float = 1e-3, max_iter: int = 200, max_cg: int = 100,
                 precision: str = "float32"):
        if C <= 0:
            raise ValueError(f"C must be positive, got {C}")
        if precision not in ("float32", "mixed"):
            raise ValueError(f"precision must be float32 or mixed, got {precision!r}")
        self.C, self.tol, self.max_iter, self.max_cg, self.precision = C, tol, max_iter, max_cg, precision
        self.coef_: torch.Tensor | None = None  # (k, d)
        self.intercept_: torch.Tensor | None = None  # (k,)
        self.passes_ = 0  # full passes over X, the unit of cost
        self.n_iter_ = 0

    # ------------------------------------------------------------------ public
    def fit(self, X: torch.Tensor, y: torch.Tensor, n_classes: int | None = None,
            warm_start: tuple[torch.Tensor, torch.Tensor] | None = None, X_low: torch.Tensor | None = None,
            spectrum: Spectrum | None = None):
        """Fit on float32 X (n, d) and integer labels y (n,).

        ``X_low`` may pass a ready bfloat16 copy; ``spectrum`` (``Spectrum.of(X)``) preconditions CG.
        """
        self.spectrum = spectrum
        if X.dtype != torch.float32 or X.ndim != 2:
            raise ValueError("X must be a 2-D float32 tensor")
        k = int(n_classes or int(y.max()) + 1)
        T = torch.full((len(y), k), -1.0, device=X.device)
        T[torch.arange(len(y), device=X.device), y.to(X.device)] = 1.0
        if warm_start is None:
            W = torch.zeros(k, X.shape[1], device=X.device)
            b = torch.zeros(k, device=X.device)
        else:
            W, b = warm_start[0].clone().to(X.device), warm_start[1].clone().to(X.device)

        pos = T.gt(0).sum(0).float()
        scale = torch.clamp(torch.minimum(pos, len(y) - pos), min=1.0) / len(y)
        gnorm0 = self._gradient_norm_at_zero(X, T)
        self.passes_, self.n_iter_ = 1, 0
        if self.precision == "mixed":
            low = X_low if X_low is not None else X.to(torch.bfloat16)
            W, b = self._newton(low, T, W, b, MIXED_COARSE_TOL * scale * gnorm0)
        self.coef_, self.intercept_ = self._newton(X, T, W, b, self.tol * scale * gnorm0)
        if not (torch.isfinite(self.coef_).all() and torch.isfinite(self.intercept_).all()):
            raise FloatingPointError(f"L2SVM diverged at C={self.C:g} (non-finite weights); features on very "
                                     "different scales need standardising (--scale standard)")
        return self

    def decision_function(self, X: torch.Tensor) -> torch.Tensor:
        return F.linear(X, self.coef_.to(X.dtype), self.intercept_.to(X.dtype)).float()

    def predict(self, X: torch.Tensor) -> torch.Tensor:
        return self.decision_function(X).argmax(1)

    def objective(self, X: torch.Tensor, y: torch.Tensor) -> float:
        """Sum over classes of the primal objective, for comparing solvers."""
        k = self.coef_.shape[0]
        T = torch.full((len(y), k), -1.0, device=X.device)
        T[torch.arange(len(y), device=X.device), y.to(X.device)] = 1.0
        return float(self._loss(F.linear(X, self.coef_, self.intercept_), T, self.coef_, self.intercept_).sum())

    # ------------------------------------------------------------------ internals
    def _loss(self, z, T, W, b):
        m = torch.clamp_min(1.0 - T * z, 0.0)
        return 0.5 * (W.pow(2).sum(1) + b.pow(2)) + self.C * m.pow(2).sum(0)

    def _gradient_norm_at_zero(self, X, T):
        # at w = 0 every row is active with margin 1: grad = -2C X~^T t
        g = -2.0 * self.C * (T.T @ X)
        gb = -2.0 * self.C * T.sum(0)
        return torch.sqrt(g.pow(2).sum(1) + gb.pow(2))

    def _newton(self, X, T, W, b, eps):
        C, dt = self.C, X.dtype
        z = F.linear(X, W.to(dt), b.to(dt)).float()
        self.passes_ += 1
        stalled = torch.zeros(W.shape[0], dtype=torch.bool, device=W.device)
        for _ in range(self.max_iter):
            m = torch.clamp_min(1.0 - T * z, 0.0)
            active = (m > 0).float()
            R = m * T
            G = W - 2.0 * C * (R.T.to(dt) @ X).float()
            gb = b - 2.0 * C * R.sum(0)
            self.passes_ += 1
            gnorm = torch.sqrt(G.pow(2).sum(1) + gb.pow(2))
            todo = ((gnorm > eps) & ~stalled).float()
            if not todo.any():
                break
            S, Sb, XS = self._cg(X, active, G * todo[:, None], gb * todo, gnorm)
            step, f0, f = self._line_search(z, T, W, b, S, Sb, XS, G, gb)
            stalled |= (todo > 0) & (f0 - f <= STALL * f0.abs())
            W = W + step[:, None] * S
            b = b + step * Sb
            z = z + step * XS
            self.n_iter_ += 1
        return W, b

    def _cg(self, X, active, G, gb, gnorm):
        """Approximately solve H s = -g per class; returns s, its intercept part, and X~ s."""
        C, dt = self.C, X.dtype
        S, Sb = torch.zeros_like(G), torch.zeros_like(gb)
        XS = torch.zeros_like(active)
        Rr, Rb = -G, -gb
        precondition = self._preconditioner(active)
        Z = precondition(Rr)
        P, Pb = Z.clone(), Rb.clone()
        rz = (Rr * Z).sum(1) + Rb.pow(2)
        rr = Rr.pow(2).sum(1) + Rb.pow(2)
        stop = (0.1 * gnorm) ** 2
        for _ in range(self.max_cg):
            live = (rr > stop).float()
            if not live.any():
                break
            XP = F.linear(X, P.to(dt), Pb.to(dt)).float()
            DXP = active * XP
            HP = P + 2.0 * C * (DXP.T.to(dt) @ X).float()
            HPb = Pb + 2.0 * C * DXP.sum(0)
            self.passes_ += 2
            pHp = (P * HP).sum(1) + Pb * HPb
            alpha = live * rz / torch.clamp_min(pHp, 1e-30)
            S += alpha[:, None] * P
            Sb += alpha * Pb
            XS += alpha * XP
            Rr -= alpha[:, None] * HP
            Rb -= alpha * HPb
            Z = precondition(Rr)
            rz_new = (Rr * Z).sum(1) + Rb.pow(2)
            beta = live * rz_new / torch.clamp_min(rz, 1e-30)
            P = Z + beta[:, None] * P
            Pb = Rb + beta * Pb
            rz = torch.where(live > 0, rz_new, rz)
            rr = torch.where(live > 0, Rr.pow(2).sum(1) + Rb.pow(2), rr)
        return S, Sb, XS

    def _preconditioner(self, active: torch.Tensor):
        """r -> M^-1 r per class, M = I + 2C rho_j V diag(lambda) V^T (identity without a spectrum)."""
        if self.spectrum is None:
            return lambda R: R
        V, lam = self.spectrum.vectors, self.spectrum.values
        scaled = 2.0 * self.C * active.mean(0)[:, None] * lam[None, :]  # (k, r)
        shrink = scaled / (1.0 + scaled)

        def apply(R):
            return R - ((R @ V) * shrink) @ V.T

        return apply

    def _line_search(self, z, T, W, b, S, Sb, XS, G, gb):
        """Backtracking (Armijo, eta=0.01) per class; cheap because X~ s is already known.

        Returns the steps (0 where no decrease was found) and the objectives before and after.
        """
        f0 = self._loss(z, T, W, b)
        slope = (G * S).sum(1) + gb * Sb
        step = torch.ones_like(f0)
        accepted = torch.zeros_like(f0, dtype=torch.bool)
        for _ in range(30):
            f = self._loss(z + step * XS, T, W + step[:, None] * S, b + step * Sb)
            ok = (f <= f0 + 0.01 * step * slope) & ~accepted
            accepted |= ok
            if accepted.all():
                break
            step = torch.where(accepted, step, step * 0.5)
        step = torch.where(accepted & (slope < 0), step, torch.zeros_like(step))
        return step, f0, torch.where(step > 0, f, f0)


def to_tensor(X: np.ndarray | torch.Tensor, device) -> torch.Tensor:
    """Share memory with a float32 numpy array on CPU; copy once to another device."""
    t = torch.from_numpy(X) if isinstance(X, np.ndarray) else X
    return t.to(device) if t.device != torch.device(device) else t
