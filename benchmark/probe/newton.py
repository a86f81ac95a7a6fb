"""One line-search Newton-CG for the linear probes, stopped on a certified relative duality gap.

A loss (``svm.SquaredHinge``: one-vs-rest squared hinge, every class its own problem;
``logreg.Softmax``: multinomial cross-entropy, one joint problem) supplies its value, gradient
residual, Hessian product, preconditioner weights, duality gap and float64 certificate. This core
owns everything else, once: warm starts, the Armijo line search, conjugate gradients with the
spectral preconditioner and shrinking to the rows with curvature, the precision ladder and its stall
rule, the time and iteration limits, and stopping. Quantities are kept per *block*: a class for a
loss whose classes are separate problems (each stops, steps and runs CG on its own), the whole
model for a joint one.

Choices, measured on 40,000 x 12,288 DCGAN features (raw and standardised, C from 1e-6 to 1e-2):

- Mixed precision: CG's Hessian products read a centred bfloat16 copy of X (``Operand``) where
  bfloat16 is native; the gradient, the margins and the gap use float32 X.
- Shrinking: CG runs only over rows with curvature for some unfinished block (the SVM's active
  rows). At the larger C values where CG is costly most rows sit outside every margin.
- Preconditioning: M_j = I + c rho_j V diag(lambda) V^T from a randomized rank-r eigen-decomposition
  of X~^T X~ (``Spectrum``), rho_j the share of curvature-weighted squared row norms in block j's
  class, applied in float64 (float32 rounding made r.M^-1 r negative).
- The precision ladder: when a block cannot descend, or its gap has not halved in ``STALL_ITERS``
  Newton steps, the fit goes on one rung up: bfloat16 CG -> float32 -> float64 (with at most
  ``DIRECT_MAX`` features a block-diagonal loss then solves its Newton step exactly, by Cholesky).
- The gap that ends a fit is always evaluated in float64 at freshly computed scores, so float32
  drift or cancellation cannot fake convergence.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from . import params
from .operand import LADDER, Operand, Rows, Rung, Spectrum, as_rows, default_precision

STALL_ITERS = 6  # a block whose gap has not halved in this many Newton steps goes on one rung up
SHRINK_BELOW = 0.7  # gather the rows with curvature for CG when fewer than this share of rows have it
DIRECT_MAX = 1024  # in float64, solve a block-diagonal loss's Newton steps exactly up to this many features


class Loss:
    """What a linear probe's loss supplies (per fit; ``svm.SquaredHinge`` and ``logreg.Softmax``)."""

    joint: bool  # True: one problem over all classes; False: each class its own (gaps, steps and CG per class)
    curvature_scale: float  # c in H = I + c X~^T diag(weights) X~ (block by block), for the preconditioner
    reduce = staticmethod(lambda t: t)  # sums over rows of a sharded matrix: all-reduced (``Rows.reduce``)

    def state(self, z: torch.Tensor):
        """What the gradient, gap and Hessian need at scores z = X~ W~^T (n, k)."""

    def residual(self, state) -> torch.Tensor:
        """R (n, k) with gradient = W~ + X~^T R."""

    def gap(self, W, b, G, gb, state) -> torch.Tensor:
        """Relative duality gap per block, float64."""

    def objective(self, z, W, b) -> torch.Tensor:
        """Primal objective per block, float64."""

    def weights(self, state) -> torch.Tensor:
        """Curvature weights (n, k): zero for a row without curvature in a class (it can be shrunk away)."""

    def restrict(self, state, index: torch.Tensor):
        """The state on a subset of rows."""

    def hessian_times(self, X: Operand, state, P: torch.Tensor, Pb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """H [P, Pb] over the rows of X (already shrunk, with the state restricted alike)."""

    def certificate(self, X: Rows, W, b) -> tuple[torch.Tensor, torch.Tensor]:
        """(scores, gap per block) recomputed from (W, b) in float64: two passes."""

    def direct_hessian(self, X: Operand, state):
        """H per block as (k, d + 1, d + 1), or None where blocks couple classes (no exact step)."""
        return None


@dataclass
class Fit:
    W: torch.Tensor  # (k, d), in the dtype its gap was certified in (float64 after the top rung)
    b: torch.Tensor  # (k,)
    gap: torch.Tensor  # per block, float64, on the CPU
    rung: str  # the highest rung of the precision ladder the fit needed
    passes: float  # passes over the float32 X (a bfloat16, float64 or shrunk pass counts its share)
    n_iter: int


class Newton:
    """Minimise ``loss`` over (W, b) from ``warm`` (or zeros) until every block's gap is at most ``tol``, or a
    limit (``max_iter`` Newton steps, ``time_limit`` seconds) stops it first with the gap it reached."""

    def __init__(self, loss: Loss, tol: float, max_iter: int, max_cg: int, precision: str = "auto",
                 time_limit: float | None = None, progress: Callable[[int, float], None] | None = None):
        self.loss, self.tol, self.max_iter, self.max_cg = loss, tol, max_iter, max_cg
        self.precision, self.time_limit, self.progress = precision, time_limit, progress

    def fit(self, X: Rows | torch.Tensor, k: int, warm=None, operand: Operand | None = None,
            spectrum: Spectrum | None = None) -> Fit:
        """Fit on the rows X (a float32 tensor, or ``Rows`` in memory, on disk or sharded)."""
        X = as_rows(X)
        start, loss = time.perf_counter(), self.loss
        precision = default_precision(X.device) if self.precision == "auto" else self.precision
        rung = Rung(X, precision, operand)
        if warm is None:
            W, b = torch.zeros(k, X.d, device=X.device), torch.zeros(k, device=X.device)
        else:
            W, b = warm[0].clone().to(X.device, torch.float32), warm[1].clone().to(X.device, torch.float32)
        self.k, self.spectrum, self.passes, n_iter = k, spectrum, 0.0, 0
        if spectrum is not None:  # squared norms of the rows of X~, for each block's share rho_j
            self.row_norms = rung.exact.squared_norms()
            self.norms_total = X.reduce(self.row_norms.sum())
            self.passes += 1
        z = self._scores(rung, W, b)
        stalled = torch.zeros(self._blocks(), dtype=torch.bool, device=X.device)
        history = []  # gaps of recent Newton steps, to see a block stall
        while True:
            state = loss.state(z)
            G, gb = self._gradient(rung, W, b, state)
            gap = loss.gap(W, b, G, gb, state)
            todo = (gap > self.tol) & ~stalled
            if not todo.any():
                z, gap = self._certificate(X, W, b)
                z = z.to(rung.dtype)
                todo = (gap > self.tol) & ~stalled
                if not todo.any():
                    break
                if rung.name != LADDER[-1]:  # float32 sums could not resolve the gap: finish in float64
                    rung, history = Rung(X, LADDER[-1]), []
                    W, b, z = W.to(rung.dtype), b.to(rung.dtype), z.to(rung.dtype)
                continue
            if n_iter >= self.max_iter or (
                    self.time_limit is not None and time.perf_counter() - start > self.time_limit):
                break
            history = (history + [gap.cpu()])[-(STALL_ITERS + 1):]
            slow = todo.cpu() & (len(history) > STALL_ITERS) & (history[-1] > 0.5 * history[0])
            if slow.any() and rung.name != LADDER[-1]:  # products too coarse to make progress: one rung up
                rung, history = Rung(X, LADDER[LADDER.index(rung.name) + 1]), []
                W, b = W.to(rung.dtype), b.to(rung.dtype)
                z = self._scores(rung, W, b)
                continue
            S, Sb = self._direction(rung, state, G, gb, todo)
            XS = rung.exact.times(S, Sb)
            self.passes += rung.exact.share
            step = self._line_search(z, W, b, S, Sb, XS, G, gb)
            n_iter += 1
            if self.progress is not None:
                self.progress(n_iter, float(gap.max()))
            moved = step > 0  # where no step was taken, S may hold rounding garbage: leave those blocks be
            if not moved[todo].all():
                if rung.name != LADDER[-1]:
                    rung, history = Rung(X, LADDER[LADDER.index(rung.name) + 1]), []  # too coarse: one rung up
                    W, b = W.to(rung.dtype), b.to(rung.dtype)
                    z = self._scores(rung, W, b)
                    continue
                stalled |= todo & ~moved  # no descent even in float64
            s, on = self._per_class(step).to(W.dtype), self._per_class(moved)
            W = torch.where(on[:, None], W + s[:, None] * S, W)  # not W + 0 * S: S may be inf where it did not move
            b = torch.where(on, b + s * Sb, b)
            z = torch.where(on, z + s * XS.to(z.dtype), z)
        if todo.any():  # stopped by a limit or a stall: report the certificate all the same
            z, gap = self._certificate(X, W, b)
        if not (torch.isfinite(W).all() and torch.isfinite(b).all()):
            raise FloatingPointError(f"{type(loss).__name__} diverged at C={loss.C:g} (non-finite weights); features "
                                     "on very different scales need standardising (--scale standard)")
        return Fit(W, b, gap.cpu(), rung.name, self.passes, n_iter)

    # ------------------------------------------------------------------ blocks
    def _blocks(self) -> int:
        return 1 if self.loss.joint else self.k

    def _per_block(self, V: torch.Tensor) -> torch.Tensor:
        """Sums per block of a (k, ...) tensor: per class, or one total."""
        V = V.reshape(self.k, -1).sum(1)
        return V.sum().reshape(1) if self.loss.joint else V

    def _per_class(self, v: torch.Tensor) -> torch.Tensor:
        """A per-block vector spread over the k classes."""
        return v.expand(self.k) if self.loss.joint else v

    # ------------------------------------------------------------------ passes
    def _scores(self, rung: Rung, W, b):
        self.passes += rung.exact.share
        return rung.exact.times(W, b)

    def _certificate(self, X: Rows, W, b):
        self.passes += 2 * Operand.of(X, "float64").share
        return self.loss.certificate(X, W, b)

    def _gradient(self, rung: Rung, W, b, state):
        Rw, Rb = rung.exact.t_times(self.loss.residual(state).to(rung.dtype))
        self.passes += rung.exact.share
        return W + Rw.to(W.dtype), b + Rb.to(b.dtype)

    def _direction(self, rung: Rung, state, G, gb, todo):
        """The Newton step of every unfinished block: exact in float64 when X is narrow, else by CG."""
        on = self._per_class(todo).to(G.dtype)
        G, gb = G * on[:, None], gb * on
        if rung.name == "float64" and G.shape[1] <= DIRECT_MAX:
            H = self.loss.direct_hessian(rung.exact, state)
            if H is not None:
                self.passes += G.shape[1] * rung.exact.share  # a Gram matrix costs about d passes
                S = -torch.linalg.solve(H, torch.cat([G, gb[:, None]], 1).unsqueeze(2)).squeeze(2)
                S = S * on[:, None]
                return S[:, :-1], S[:, -1]
        return self._cg(rung.cg, state, G, gb, todo)

    def _cg(self, X: Operand, state, G, gb, todo):
        """Approximately solve H s = -g per unfinished block over the rows with curvature for one of them.

        Stops a block at |r| <= 0.1 |g|, or when rounding in the products makes its curvature p.Hp fall below
        |p|^2 (impossible in exact arithmetic, as H >= I) or r.M^-1 r not positive.
        """
        dtype = G.dtype
        weights = self.loss.weights(state)
        rows = (weights[:, self._per_class(todo)] != 0).any(1)
        share = float(X.reduce(rows.sum().double())) / max(X.source.count(), 1)
        if share < SHRINK_BELOW:
            index = rows.nonzero().squeeze(1)
            X, state, weights = X.rows(index), self.loss.restrict(state, index), weights[index]
            self.passes += share * X.share
        else:
            share, rows = 1.0, None
        S, Sb = torch.zeros_like(G), torch.zeros_like(gb)
        R, Rb = -G, -gb
        precondition = self._preconditioner(weights, rows)
        Z, Zb, rz = precondition(R, Rb)
        P, Pb = Z.clone(), Zb.clone()
        rr = self._per_block(R.pow(2)) + self._per_block(Rb.pow(2))
        live = rr > 0
        for _ in range(self.max_cg):
            if not live.any():
                break
            HP, HPb = self.loss.hessian_times(X, state, P, Pb)
            HP, HPb = HP.to(dtype), HPb.to(dtype)
            self.passes += 2 * share * X.share
            pp = self._per_block(P.pow(2)) + self._per_block(Pb.pow(2))
            pHp = self._per_block(P * HP) + self._per_block(Pb * HPb)
            broken = pHp < pp
            alpha = torch.where(live, rz / torch.where(broken, pp, pHp).double().clamp_min(1e-300), 0.0)
            a = self._per_class(alpha).to(dtype)
            S, Sb = S + a[:, None] * P, Sb + a * Pb
            R, Rb = R - a[:, None] * HP, Rb - a * HPb
            Z, Zb, rz_new = precondition(R, Rb)
            beta = self._per_class(torch.where(live, rz_new / rz.clamp_min(1e-300), 0.0)).to(dtype)
            P, Pb = Z + beta[:, None] * P, Zb + beta * Pb
            rz = torch.where(live, rz_new, rz)
            residual = self._per_block(R.pow(2)) + self._per_block(Rb.pow(2))
            live = live & ~broken & (rz > 0) & (residual > 0.01 * rr)
        return S, Sb

    def _preconditioner(self, weights: torch.Tensor, rows: torch.Tensor | None):
        """(r, r_b) -> (M^-1 (r, r_b), r.M^-1 r per block), M_j = I + c rho_j V diag(lambda) V^T.

        In float64: M^-1 shrinks the top directions by up to 1e-6, and float32 rounding there could make
        r.M^-1 r negative and break CG.
        """
        if self.spectrum is None:
            return lambda R, Rb: (R, Rb, self._per_block(R.double().pow(2)) + self._per_block(Rb.double().pow(2)))
        V, lam = self.spectrum.vectors, self.spectrum.values.double()
        norms = self.row_norms if rows is None else self.row_norms[rows]
        rho = self.loss.reduce((weights.double() * norms[:, None]).sum(0)) / self.norms_total
        scaled = self.loss.curvature_scale * rho[:, None] * lam[None, :]  # (k, r)
        shrink = scaled / (1.0 + scaled)

        def apply(R, Rb):
            full = torch.cat([R, Rb[:, None]], 1).double()
            Z = (full - ((full @ V) * shrink) @ V.T).to(R.dtype)
            return Z[:, :-1], Z[:, -1], self._per_block(full * Z.double())

        return apply

    def _line_search(self, z, W, b, S, Sb, XS, G, gb):
        """Backtracking (Armijo, eta=0.01) per block on the float64 objective; cheap because X~ s is known.

        Returns the steps per block (0 where no decrease was found).
        """
        loss = self.loss
        f0 = loss.objective(z, W, b)
        slope = self._per_block((G * S).double()) + self._per_block((gb * Sb).double())
        step = torch.ones_like(f0)
        accepted = torch.zeros_like(f0, dtype=torch.bool)
        for _ in range(40):
            s = self._per_class(step).to(W.dtype)
            f = loss.objective(z + s * XS.to(z.dtype), W + s[:, None] * S, b + s * Sb)
            accepted |= f <= f0 + 0.01 * step * slope
            if accepted.all():
                break
            step = torch.where(accepted, step, step * 0.5)
        return torch.where(accepted & (slope < 0), step, torch.zeros_like(step))


class LinearSolver:
    """A linear probe fitted by ``Newton`` on its ``loss``, as the estimators, the C search and ``bench solvers``
    hold it: ``fit`` stops when every block's relative duality gap is at most ``tol``."""

    loss: type[Loss]

    def __init__(self, C: float = 1.0, tol: float = 1e-3, max_iter: int = 200, max_cg: int = 500,
                 precision: str = "auto", time_limit: float | None = None):
        if precision not in ("auto", "float32", "mixed"):
            raise ValueError(f"precision must be auto, float32 or mixed, got {precision!r}")
        self.C, self.tol = params.positive_finite("C", C), params.positive_finite("tol (relative duality gap)", tol)
        self.max_iter, self.max_cg = params.positive_int("max_iter", max_iter), max_cg
        self.precision, self.time_limit = precision, time_limit
        self.coef_: torch.Tensor | None = None  # (k, d)
        self.intercept_: torch.Tensor | None = None  # (k,)
        self.gap_: torch.Tensor | None = None  # relative duality gap per block, float64
        self.certified_ = False
        self.precision_ = ""  # the highest rung of the precision ladder the fit needed
        self.passes_ = 0.0  # passes over the float32 X (a bfloat16, float64 or shrunk pass counts its share)
        self.n_iter_ = 0

    def fit(self, X: Rows | torch.Tensor, y: torch.Tensor, n_classes: int | None = None,
            warm_start: tuple[torch.Tensor, torch.Tensor] | None = None, operand: Operand | None = None,
            spectrum: Spectrum | None = None, progress=None):
        """Fit on float32 X (n, d) and integer labels y (n,).

        ``operand`` may pass a ready ``Operand.of(X, "mixed")`` and ``spectrum`` (``Spectrum.of(operand)``)
        preconditions CG; both are worth computing once per matrix and sharing along the C grid.
        """
        k = int(n_classes or int(y.max()) + 1)
        X = as_rows(X)
        newton = Newton(self.loss(self.C, y, k, X.device, X.reduce), self.tol, self.max_iter, self.max_cg,
                        self.precision, self.time_limit, progress)
        fit = newton.fit(X, k, warm_start, operand, spectrum)
        self.coef_, self.intercept_, self.gap_, self.precision_ = fit.W, fit.b, fit.gap, fit.rung
        self.passes_, self.n_iter_ = fit.passes, fit.n_iter
        self.certified_ = bool((self.gap_ <= self.tol).all())
        return self

    @property
    def gap(self) -> float:
        """The worst block's relative duality gap."""
        return float(self.gap_.max())

    def decision_function(self, X: torch.Tensor) -> torch.Tensor:
        return F.linear(X, self.coef_.to(X.dtype), self.intercept_.to(X.dtype)).float()

    def predict(self, X: torch.Tensor) -> torch.Tensor:
        return self.decision_function(X).argmax(1)
