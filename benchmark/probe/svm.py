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

Method: line-search Newton with conjugate-gradient Hessian products on the active set
(rows with positive loss), as liblinear's primal solver, with choices made by measurement
on 40,000 x 12,288 DCGAN features (raw and standardised, C from 1e-6 to 1e-2):

- Mixed precision (``precision="mixed"``, the default where bfloat16 matrix products are
  native: CUDA, or a CPU with AVX512-BF16/AMX). CG's Hessian products read a centred
  bfloat16 copy of X (``Operand``): a pass costs 3-4x less than in float32 on such a CPU,
  and CG needed about 10% more iterations than with float32 products. The gradient, the
  margins and the gap use float32 X. The whole raw-feature C search (1e-6 to 1e-3, nine
  fits, all certified) took 84 s against 275 s for the previous float32 solver with its
  uncertified gradient rule.
- Shrinking: CG runs only over the rows active for some unfinished class. At the larger C
  values where CG is costly most rows sit outside every margin.
- Preconditioning: a randomized rank-r eigen-decomposition of X~^T X~ (X with the constant
  column, so the intercept is preconditioned too; computed once per matrix and shared along
  the C grid) gives M_j = I + 2C rho_j V diag(lambda) V^T, with rho_j the share of squared
  row norms in class j's active set, applied in float64 (float32 rounding made r.M^-1 r
  negative). Without the intercept column and with plain row counts for rho, CG hit its
  iteration cap at C >= 1e-3 and gaps stayed above 1e-1.
- A precision ladder for what rounding cannot resolve: bfloat16 products are too coarse
  once 2C times the spread of X^T X is large (standardised features at C = 1e-2), and
  float32 gradients are too coarse to certify badly scaled features (columns spanning
  1e-3 to 1e3) at large C. When a class can no longer descend, or its gap has not halved in
  ``STALL_ITERS`` Newton steps, the fit goes on one rung up: bfloat16 CG -> float32 -> float64 (products in row blocks
  of the float32 X, no copy; with at most ``DIRECT_MAX`` features the Newton step is then
  solved exactly, by Cholesky, because CG's iteration count grows with the condition
  number however precise its arithmetic).

A fit that reaches ``max_iter`` Newton steps or ``time_limit`` seconds first stops there and
reports its gap (``gap_``); ``certified_`` says whether every class met ``tol``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..core.devices import bfloat16_is_fast
from . import params

SHRINK_BELOW = 0.7  # gather the active rows for CG when fewer than this share of rows are active
BLOCK = 256  # rows per block of float64 products (measured 3-5x faster than 2048 rows here)
COPY_BLOCK = 4096  # rows per block when making the bfloat16 copy
DIRECT_MAX = 1024  # in float64, solve Newton steps exactly up to this many features
STALL_ITERS = 6  # a class whose gap has not halved in this many Newton steps goes on one rung up
LADDER = ("mixed", "float32", "float64")


def default_precision(device) -> str:
    return "mixed" if bfloat16_is_fast(device) else "float32"


@dataclass
class Operand:
    """X for products with X~ = [X, 1], stored as X_c + 1 mean^T, computed in ``compute``.

    ``mixed``: X_c is a centred bfloat16 copy. Centring keeps the common component of
    non-negative features (raw DCGAN activations) exact in float32, so rounding scales with
    the spread of the features, not their size. ``float32``: X itself. ``float64``: X itself,
    its products computed in float64 row block by row block.
    """

    X: torch.Tensor  # (n, d)
    mean: torch.Tensor  # (d,)
    compute: torch.dtype

    @classmethod
    def of(cls, X: torch.Tensor, precision: str) -> "Operand":
        if precision in ("float32", "float64"):
            dtype = torch.float64 if precision == "float64" else torch.float32
            return cls(X, torch.zeros(X.shape[1], dtype=dtype, device=X.device), dtype)
        mean = torch.zeros(X.shape[1], dtype=torch.float64, device=X.device)
        for i in range(0, len(X), COPY_BLOCK):
            mean += X[i:i + COPY_BLOCK].sum(0, dtype=torch.float64)
        mean = (mean / max(len(X), 1)).float()
        low = torch.empty(X.shape, dtype=torch.bfloat16, device=X.device)
        for i in range(0, len(X), COPY_BLOCK):  # no full-size float32 temporary
            low[i:i + COPY_BLOCK] = X[i:i + COPY_BLOCK] - mean
        return cls(low, mean, torch.bfloat16)

    @property
    def result(self) -> torch.dtype:
        return torch.float64 if self.compute == torch.float64 else torch.float32

    @property
    def share(self) -> float:
        """Cost of a pass relative to a float32 pass."""
        return {torch.bfloat16: 0.5, torch.float32: 1.0}.get(self.compute, 2.0)  # float64: measured ~2x

    def rows(self, index: torch.Tensor) -> "Operand":
        return Operand(self.X[index], self.mean, self.compute)

    def _blocks(self, rows: int = BLOCK):
        if self.X.dtype == self.compute:
            yield self.X
            return
        for i in range(0, len(self.X), rows):
            yield self.X[i:i + rows].to(self.compute)

    def times(self, P: torch.Tensor, Pb: torch.Tensor) -> torch.Tensor:
        """X~ [P, Pb]^T: (n, k) from (k, d) and (k,)."""
        P = P.to(self.result)
        if self.X.dtype == self.compute:
            out = F.linear(self.X, P.to(self.compute)).to(self.result)
        else:  # (P X_b^T)^T: this layout ran steadily at about a float32 pass here, F.linear's varied 1-5x
            out = torch.cat([(P @ block.T).T for block in self._blocks()])
        return out + (P @ self.mean.to(self.result) + Pb.to(self.result))

    def t_times(self, V: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """X~^T V, split into its (k, d) and (k,) parts, from (n, k)."""
        V = V.to(self.result)
        out, start = 0, 0
        for block in self._blocks():
            out = out + (V[start:start + len(block)].T.to(self.compute) @ block).to(self.result)
            start += len(block)
        column = V.sum(0)
        return out + column[:, None] * self.mean.to(self.result), column

    def gram(self, D: torch.Tensor) -> torch.Tensor:
        """X~^T diag(D_j) X~ for every class j: (k, d + 1, d + 1), in the result dtype."""
        k, d = D.shape[1], self.X.shape[1]
        out = torch.zeros(k, d + 1, d + 1, dtype=self.result, device=self.X.device)
        start = 0
        for block in self._blocks():
            rows = torch.cat([block.to(self.result) + self.mean.to(self.result),
                              torch.ones(len(block), 1, dtype=self.result, device=block.device)], 1)
            weights = D[start:start + len(block)].to(self.result)
            for j in range(k):
                out[j] += (rows * weights[:, j:j + 1]).T @ rows
            start += len(block)
        return out


@dataclass
class Spectrum:
    """Top eigenpairs of X~^T X~ (X with a constant column appended): X~^T X~ ~ V diag(values) V^T."""

    vectors: torch.Tensor  # (d + 1, r), orthonormal columns, float64
    values: torch.Tensor  # (r,)

    @classmethod
    def of(cls, X: Operand | torch.Tensor, rank: int = 512, power_iters: int = 1, seed: int = 0) -> "Spectrum":
        """Randomized range finder with power iterations (Halko et al. 2011): 2 * (power_iters + 1) + 1 passes."""
        X = X if isinstance(X, Operand) else Operand.of(X, "float32")
        d = X.X.shape[1]
        g = torch.Generator(device="cpu").manual_seed(seed)
        Q = torch.randn(d + 1, min(rank, d + 1), generator=g).to(X.X.device)
        for _ in range(power_iters + 1):
            w, wb = X.t_times(X.times(Q[:d].T, Q[d]))
            Q, _ = torch.linalg.qr(torch.cat([w, wb[:, None]], 1).T.float())
        Q, _ = torch.linalg.qr(Q.double())  # orthonormal to float64 precision: M^-1 must stay positive definite
        B = X.times(Q[:d].T.float(), Q[d].float()).double()
        values, U = torch.linalg.eigh(B.T @ B)
        return cls(Q @ U, values.clamp_min(0).float())


def one_vs_rest(y: torch.Tensor, k: int, device, dtype=torch.float32) -> torch.Tensor:
    T = torch.full((len(y), k), -1.0, device=device, dtype=dtype)
    T[torch.arange(len(y), device=device), y.to(device)] = 1.0
    return T


def duality_gap(W, b, G, gb, margins, C) -> tuple[torch.Tensor, torch.Tensor]:
    """Per class: relative gap (P - D) / P and P, in float64, from the gradient at (W, b) and the hinge margins."""
    m, W, b = margins.double(), W.double(), b.double()
    v, vb = W - G.double(), b - gb.double()  # v = sum_i a_i t_i x~_i
    hinge = C * m.pow(2).sum(0)
    primal = 0.5 * (W.pow(2).sum(1) + b.pow(2)) + hinge
    dual = 2.0 * C * m.sum(0) - 0.5 * (v.pow(2).sum(1) + vb.pow(2)) - hinge
    return (primal - dual) / primal, primal


class _Rung:
    """One rung of the precision ladder: exact products (margins, gradient) and CG's operand."""

    def __init__(self, X: torch.Tensor, name: str, operand: Operand | None = None):
        self.name = name
        self.exact = Operand.of(X, "float64" if name == "float64" else "float32")
        self.cg = operand if operand is not None and name == "mixed" else (
            self.exact if name != "mixed" else Operand.of(X, "mixed"))
        self.dtype = self.exact.result


class SVMSolver:
    """One-vs-rest L2-SVM; ``fit`` stops when every class's relative duality gap is at most ``tol``."""

    def __init__(self, C: float = 1.0, tol: float = 1e-3, max_iter: int = 200, max_cg: int = 500,
                 precision: str = "auto", time_limit: float | None = None):
        if precision not in ("auto", "float32", "mixed"):
            raise ValueError(f"precision must be auto, float32 or mixed, got {precision!r}")
        self.C, self.tol = params.positive_finite("C", C), params.positive_finite("tol (relative duality gap)", tol)
        self.max_iter, self.max_cg = params.positive_int("max_iter", max_iter), max_cg
        self.precision, self.time_limit = precision, time_limit
        self.coef_: torch.Tensor | None = None  # (k, d)
        self.intercept_: torch.Tensor | None = None  # (k,)
        self.gap_: torch.Tensor | None = None  # (k,) relative duality gap per class, float64
        self.certified_ = False
        self.precision_ = ""  # the highest rung of the precision ladder the fit needed
        self.passes_ = 0.0  # passes over the float32 X (a bfloat16, float64 or shrunk pass counts its share)
        self.n_iter_ = 0

    # ------------------------------------------------------------------ public
    def fit(self, X: torch.Tensor, y: torch.Tensor, n_classes: int | None = None,
            warm_start: tuple[torch.Tensor, torch.Tensor] | None = None, operand: Operand | None = None,
            spectrum: Spectrum | None = None):
        """Fit on float32 X (n, d) and integer labels y (n,).

        ``operand`` may pass a ready ``Operand.of(X, "mixed")`` and ``spectrum`` (``Spectrum.of(operand)``)
        preconditions CG; both are worth computing once per matrix and sharing along the C grid.
        """
        if X.dtype != torch.float32 or X.ndim != 2:
            raise ValueError("X must be a 2-D float32 tensor")
        start = time.perf_counter()
        k = int(n_classes or int(y.max()) + 1)
        precision = default_precision(X.device) if self.precision == "auto" else self.precision
        rung = _Rung(X, precision, operand)
        T = one_vs_rest(y, k, X.device)
        if warm_start is None:
            W, b = torch.zeros(k, X.shape[1], device=X.device), torch.zeros(k, device=X.device)
        else:
            W, b = warm_start[0].clone().to(X.device, torch.float32), warm_start[1].clone().to(X.device, torch.float32)
        self.spectrum, self.passes_, self.n_iter_ = spectrum, 0.0, 0
        if spectrum is not None:  # squared norms of the rows of X~, for each class's share rho_j
            self._row_norms = torch.linalg.vector_norm(X, dim=1).pow(2) + 1.0
            self.passes_ += 1

        z = self._margins(rung, W, b)
        stalled = torch.zeros(k, dtype=torch.bool, device=X.device)
        history = []  # gaps of recent Newton steps, to see a class stall
        while True:
            m, G, gb = self._gradient(rung, T, W, b, z)
            gap, _ = duality_gap(W, b, G, gb, m, self.C)
            todo = (gap > self.tol) & ~stalled
            if not todo.any():
                z, gap = self._certificate(X, rung, T, W, b)
                todo = (gap > self.tol) & ~stalled
                if not todo.any():
                    break
                if rung.name != LADDER[-1]:  # float32 sums could not resolve the gap: finish in float64
                    rung, history = _Rung(X, LADDER[-1]), []
                    W, b, T, z = W.to(rung.dtype), b.to(rung.dtype), T.to(rung.dtype), z.to(rung.dtype)
                continue
            if self.n_iter_ >= self.max_iter or (
                    self.time_limit is not None and time.perf_counter() - start > self.time_limit):
                break
            history = (history + [gap.cpu()])[-(STALL_ITERS + 1):]
            slow = todo.cpu() & (len(history) > STALL_ITERS) & (history[-1] > 0.5 * history[0])
            if slow.any() and rung.name != LADDER[-1]:  # products too coarse to make progress: one rung up
                rung, history = self._climb(X, rung), []
                W, b, T = W.to(rung.dtype), b.to(rung.dtype), T.to(rung.dtype)
                z = self._margins(rung, W, b)
                continue
            S, Sb = self._direction(rung, m > 0, G, gb, todo)
            XS = rung.exact.times(S, Sb)
            self.passes_ += rung.exact.share
            step = self._line_search(z, T, W, b, S, Sb, XS, G, gb)
            self.n_iter_ += 1
            moved = step > 0  # where no step was taken, S may hold rounding garbage: leave those classes be
            if not moved[todo].all():
                if rung.name != LADDER[-1]:
                    rung, history = self._climb(X, rung), []  # too coarse at this C: go on one rung up
                    W, b, T = W.to(rung.dtype), b.to(rung.dtype), T.to(rung.dtype)
                    z = self._margins(rung, W, b)
                    continue
                stalled |= todo & ~moved  # no descent even in float64
            W = torch.where(moved[:, None], W + step[:, None] * S, W)
            b = torch.where(moved, b + step * Sb, b)
            z = torch.where(moved, z + step * XS, z)
        if todo.any():  # stopped by a limit or a stall: report the certificate all the same
            z, gap = self._certificate(X, rung, T, W, b)
        if not (torch.isfinite(W).all() and torch.isfinite(b).all()):
            raise FloatingPointError(f"L2-SVM diverged at C={self.C:g} (non-finite weights); features on very "
                                     "different scales need standardising (--scale standard)")
        self.coef_, self.intercept_, self.gap_, self.precision_ = W, b, gap.cpu(), rung.name
        self.certified_ = bool((self.gap_ <= self.tol).all())
        return self

    @property
    def gap(self) -> float:
        """The worst class's relative duality gap."""
        return float(self.gap_.max())

    def decision_function(self, X: torch.Tensor) -> torch.Tensor:
        return F.linear(X, self.coef_.to(X.dtype), self.intercept_.to(X.dtype)).float()

    def predict(self, X: torch.Tensor) -> torch.Tensor:
        return self.decision_function(X).argmax(1)

    def objective(self, X: torch.Tensor, y: torch.Tensor) -> float:
        """Sum over classes of the primal objective, in float64, for comparing solvers."""
        return float(objective(X, y, self.coef_, self.intercept_, self.C).sum())

    # ------------------------------------------------------------------ internals
    def _climb(self, X, rung: _Rung) -> _Rung:
        return _Rung(X, LADDER[LADDER.index(rung.name) + 1])

    def _margins(self, rung: _Rung, W, b):
        self.passes_ += rung.exact.share
        return rung.exact.times(W, b)

    def _certificate(self, X, rung: _Rung, T, W, b):
        """The gap at margins recomputed from W, both products (X w, X^T r) in float64: two passes.

        At the optimum 2C X~^T r cancels w, and float32 sums of large terms could hide or fake
        a gap (seen with columns spanning 1e-3 to 1e3). Returns the margins in the rung's dtype.
        """
        exact = Operand.of(X, "float64")
        T64 = T.double()
        z = exact.times(W, b)
        m = torch.clamp_min(1.0 - T64 * z, 0.0)
        Rw, Rb = exact.t_times(m * T64)
        self.passes_ += 2 * exact.share
        gap = duality_gap(W, b, W - 2.0 * self.C * Rw, b - 2.0 * self.C * Rb, m, self.C)[0]
        return z.to(rung.dtype), gap

    def _gradient(self, rung: _Rung, T, W, b, z):
        """Hinge margins and the gradient (w and b parts) at margins z: one pass over X."""
        m = torch.clamp_min(1.0 - T * z, 0.0)
        Rw, Rb = rung.exact.t_times(m * T)
        self.passes_ += rung.exact.share
        return m, W - 2.0 * self.C * Rw, b - 2.0 * self.C * Rb

    def _loss(self, z, T, W, b):
        m = torch.clamp_min(1.0 - T * z, 0.0).double()
        return 0.5 * (W.double().pow(2).sum(1) + b.double().pow(2)) + self.C * m.pow(2).sum(0)

    def _direction(self, rung: _Rung, active, G, gb, todo):
        """The Newton step of every unfinished class: exact in float64 when X is narrow, else by CG."""
        G, gb = G * todo[:, None], gb * todo
        if rung.name == "float64" and G.shape[1] <= DIRECT_MAX:
            H = rung.exact.gram(active.to(rung.dtype)) * (2.0 * self.C)
            H.diagonal(dim1=1, dim2=2).add_(1.0)
            self.passes_ += G.shape[1] * rung.exact.share  # a Gram matrix costs about d passes
            S = -torch.linalg.solve(H, torch.cat([G, gb[:, None]], 1).unsqueeze(2)).squeeze(2)
            S = S * todo[:, None]
            return S[:, :-1], S[:, -1]
        return self._cg(rung.cg, active, G, gb, todo)

    def _cg(self, X: Operand, active, G, gb, todo):
        """Approximately solve H s = -g per unfinished class over the rows active for one of them.

        Stops a class at |r| <= 0.1 |g|, or when rounding in the products makes its curvature
        p.Hp fall below |p|^2 (impossible in exact arithmetic, as H >= I) or r.M^-1 r not positive.
        """
        C, dtype = self.C, G.dtype
        rows = active[:, todo].any(1)
        share = float(rows.float().mean())
        if share < SHRINK_BELOW:
            index = rows.nonzero().squeeze(1)
            X, active = X.rows(index), active[index]
            self.passes_ += share * X.share
        else:
            share, rows = 1.0, None
        D = active.to(dtype)
        S, Sb = torch.zeros_like(G), torch.zeros_like(gb)
        Rr, Rb = -G, -gb
        precondition = self._preconditioner(active, rows)
        Z, Zb, rz = precondition(Rr, Rb)
        P, Pb = Z.clone(), Zb.clone()
        rr = Rr.pow(2).sum(1) + Rb.pow(2)
        live = rr > 0
        for _ in range(self.max_cg):
            if not live.any():
                break
            DXP = D * X.times(P, Pb).to(dtype)
            HP, HPb = X.t_times(DXP)
            HP, HPb = P + 2.0 * C * HP.to(dtype), Pb + 2.0 * C * HPb.to(dtype)
            self.passes_ += 2 * share * X.share
            pp = P.pow(2).sum(1) + Pb.pow(2)
            pHp = (P * HP).sum(1) + Pb * HPb
            broken = pHp < pp
            alpha = torch.where(live, rz / torch.where(broken, pp, pHp).double().clamp_min(1e-300), 0.0).to(dtype)
            S += alpha[:, None] * P
            Sb += alpha * Pb
            Rr -= alpha[:, None] * HP
            Rb -= alpha * HPb
            Z, Zb, rz_new = precondition(Rr, Rb)
            beta = torch.where(live, rz_new / rz.clamp_min(1e-300), 0.0).to(dtype)
            P = Z + beta[:, None] * P
            Pb = Zb + beta * Pb
            rz = torch.where(live, rz_new, rz)
            live = live & ~broken & (rz > 0) & (Rr.pow(2).sum(1) + Rb.pow(2) > 0.01 * rr)
        return S, Sb

    def _preconditioner(self, active: torch.Tensor, rows: torch.Tensor | None):
        """(r, r_b) -> (M^-1 (r, r_b), r.M^-1 r) per class, M = I + 2C rho_j V diag(lambda) V^T.

        In float64: M^-1 shrinks the top directions by up to 1e-6, and float32 rounding there
        could make r.M^-1 r negative and break CG.
        """
        if self.spectrum is None:
            return lambda R, Rb: (R, Rb, R.double().pow(2).sum(1) + Rb.double().pow(2))
        V, lam = self.spectrum.vectors, self.spectrum.values.double()
        norms = self._row_norms if rows is None else self._row_norms[rows]
        rho = (active.double() * norms[:, None].double()).sum(0) / self._row_norms.double().sum()
        scaled = 2.0 * self.C * rho[:, None] * lam[None, :]  # (k, r)
        shrink = scaled / (1.0 + scaled)

        def apply(R, Rb):
            full = torch.cat([R, Rb[:, None]], 1).double()
            Z = (full - ((full @ V) * shrink) @ V.T).to(R.dtype)
            return Z[:, :-1], Z[:, -1], (full * Z.double()).sum(1)

        return apply

    def _line_search(self, z, T, W, b, S, Sb, XS, G, gb):
        """Backtracking (Armijo, eta=0.01) per class, objectives in float64; cheap because X~ s is known.

        Returns the steps (0 where no decrease was found).
        """
        f0 = self._loss(z, T, W, b)
        slope = ((G * S).sum(1) + gb * Sb).double()
        step = torch.ones_like(f0)
        accepted = torch.zeros_like(f0, dtype=torch.bool)
        for _ in range(40):
            s = step.to(W.dtype)
            f = self._loss(z + s * XS, T, W + s[:, None] * S, b + s * Sb)
            accepted |= f <= f0 + 0.01 * step * slope
            if accepted.all():
                break
            step = torch.where(accepted, step, step * 0.5)
        return torch.where(accepted & (slope < 0), step, torch.zeros_like(step)).to(W.dtype)


def objective(X: torch.Tensor, y: torch.Tensor, W: torch.Tensor, b: torch.Tensor, C: float) -> torch.Tensor:
    """Per-class primal objective of any linear model (W, b) on (X, y), in float64."""
    T = one_vs_rest(y, W.shape[0], X.device, torch.float64)
    m = torch.clamp_min(1.0 - T * Operand.of(X, "float64").times(W, b), 0.0)
    return 0.5 * (W.double().pow(2).sum(1) + b.double().pow(2)) + C * m.pow(2).sum(0)


def certify(X: torch.Tensor, y: torch.Tensor, W: torch.Tensor, b: torch.Tensor, C: float) -> torch.Tensor:
    """Per-class relative duality gap of any linear model (W, b), e.g. LinearSVC's, in float64: two passes over X."""
    exact, T = Operand.of(X, "float64"), one_vs_rest(y, W.shape[0], X.device, torch.float64)
    W, b = W.to(X.device, torch.float64), b.to(X.device, torch.float64)
    m = torch.clamp_min(1.0 - T * exact.times(W, b), 0.0)
    Rw, Rb = exact.t_times(m * T)
    return duality_gap(W, b, W - 2.0 * C * Rw, b - 2.0 * C * Rb, m, C)[0].cpu()


def to_tensor(X: np.ndarray | torch.Tensor, device) -> torch.Tensor:
    """Share memory with a float32 numpy array on CPU; copy once to another device."""
    t = torch.from_numpy(X) if isinstance(X, np.ndarray) else X
    return t.to(device) if t.device != torch.device(device) else t
