"""The laws' functional forms: ``Law`` (a constant plus power-law terms in the run's sizes), the four laws of
``LAWS`` (``atlas``, ``chinchilla``, ``vocab``, ``vocab_untied``), the published values they are compared with, the
constants of a fit (Huber δ, minimum R², points needed, parameter bounds) and the symbols and number formats of
every table. And ``_Model``, a law laid out on a data set: centred log variables, the exponents and terms the data
identify, the map from the parameter vector θ to predictions and back to the reported parameters, and the Huber
objective that L-BFGS-B minimises from a grid of starts (``fit.fit_law`` drives it). Conventions:
``xlmr_core.study.laws``.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from xlmr_core.errors import XlmrError

# ---------------------------------------------------------------- the laws


@dataclass(frozen=True)
class Term:
    """One power-law term: ``coef · Π x ** (sign · exponent)`` over its ``powers`` (variable, exponent, sign)."""

    coef: str
    powers: tuple[tuple[str, str, int], ...]


@dataclass(frozen=True, kw_only=True)
class Law:
    """A scaling law: a constant plus power-law terms in the variables (table columns of ``fitting_table``)."""

    name: str
    """Short name (``atlas``, ``chinchilla``, ``vocab``)."""
    title: str
    """What the law is, for figure titles and reprs."""
    formula: str
    variables: tuple[str, ...]
    """The law's variables; by default also the table columns they are read from."""
    constant: str
    terms: tuple[Term, ...]
    negative_constant: bool = False
    """The constant enters with a minus sign (Tao et al.'s −E)."""
    ties: tuple[tuple[str, str], ...] = ()
    """(exponent, the exponent it equals): Tao et al. fit with α1 = β."""
    signed: tuple[str, ...] = ()
    """Exponents that may be negative (ATLAS's φ, ψ); the others are decays, ≥ 0."""
    space: str = "auto"
    """``log`` (Huber on log-loss), ``linear`` (Huber on the loss) or ``auto`` (log where the loss is > 0)."""
    reference: str = ""

    def __post_init__(self):
        if self.space not in ("auto", "log", "linear"):
            raise XlmrError(f"law {self.name}: space must be auto, log or linear, got {self.space!r}")
        used = {v for t in self.terms for v, _, _ in t.powers}
        if not used <= set(self.variables):
            raise XlmrError(f"law {self.name}: terms use {sorted(used - set(self.variables))}, not among its variables")

    @property
    def exponents(self) -> tuple[str, ...]:
        """Every exponent name, in order of first use."""
        return tuple(dict.fromkeys(e for t in self.terms for _, e, _ in t.powers))

    @property
    def free_exponents(self) -> tuple[str, ...]:
        """The exponents fitted (tied ones follow another)."""
        tied = dict(self.ties)
        return tuple(e for e in self.exponents if e not in tied)

    def resolve(self, exponent: str) -> str:
        return dict(self.ties).get(exponent, exponent)

    @property
    def param_names(self) -> tuple[str, ...]:
        """Reported parameters: the constant, the coefficients, then the exponents."""
        return (self.constant, *(t.coef for t in self.terms), *self.exponents)


ATLAS = Law(
    name="atlas", title="ATLAS curse of multilinguality",
    formula="L = L∞ + A·K^φ/N^α + B·K^ψ/D_t^β", variables=("K", "N", "D_t"), constant="L_inf",
    terms=(Term("A", (("K", "phi", 1), ("N", "alpha", -1))), Term("B", (("K", "psi", 1), ("D_t", "beta", -1)))),
    signed=("phi", "psi"), reference="Longpre et al. 2025 (ATLAS), §5")
CHINCHILLA = Law(
    name="chinchilla", title="Chinchilla L(N, D)", formula="L = E + A/N^α + B/D^β", variables=("N", "D"),
    constant="E", terms=(Term("A", (("N", "alpha", -1),)), Term("B", (("D", "beta", -1),))),
    reference="Hoffmann et al. 2022, approach 3")
TAO_VOCAB = Law(
    name="vocab", title="Tao et al. vocabulary law", formula="L_u = −E + A1/N_nv^α1 + A2/N_v^α2 + B/D^β (α1 = β)",
    variables=("N", "N_v", "D"), constant="E", negative_constant=True,
    terms=(Term("A1", (("N", "alpha1", -1),)), Term("A2", (("N_v", "alpha2", -1),)), Term("B", (("D", "beta", -1),))),
    ties=(("beta", "alpha1"),), space="linear", reference="Tao et al. 2024, approach 3")
TAO_VOCAB_UNTIED = Law(
    name="vocab_untied", title="Tao et al. vocabulary law, β free", formula="L_u = −E + A1/N_nv^α1 + A2/N_v^α2 + B/D^β",
    variables=("N", "N_v", "D"), constant="E", negative_constant=True, terms=TAO_VOCAB.terms, space="linear",
    reference="Tao et al. 2024, approach 3 without the tie")
LAWS: dict[str, Law] = {law.name: law for law in (ATLAS, CHINCHILLA, TAO_VOCAB, TAO_VOCAB_UNTIED)}

PUBLISHED: tuple[dict, ...] = (
    {"law": "atlas", "param": "phi", "value": 0.11, "source": "Longpre et al. 2025 (ATLAS), decoder LMs"},
    {"law": "atlas", "param": "psi", "value": -0.04, "source": "Longpre et al. 2025 (ATLAS), decoder LMs"},
    {"law": "chinchilla", "param": "alpha", "value": 0.34, "source": "Hoffmann et al. 2022, approach 3"},
    {"law": "chinchilla", "param": "beta", "value": 0.28, "source": "Hoffmann et al. 2022, approach 3"},
    {"law": "chinchilla", "param": "alpha", "value": 0.3478, "source": "Besiroglu et al. 2024 (replication)"},
    {"law": "chinchilla", "param": "beta", "value": 0.3658, "source": "Besiroglu et al. 2024 (replication)"},
    {"law": "vocab", "param": "alpha1", "value": 0.447, "source": "Tao et al. 2024, approach 3 (α1 = β)"},
    {"law": "vocab", "param": "alpha2", "value": 0.671, "source": "Tao et al. 2024, approach 3 (α1 = β)"},
    {"law": "vocab", "param": "beta", "value": 0.447, "source": "Tao et al. 2024, approach 3 (α1 = β)"},
)
"""Published exponents (decoder LMs, loss in nats per token; coefficients are not comparable across units)."""
PUBLISHED_MULTIPLIERS = {"params": 1.18, "total_tokens": 1.66, "r": 2.0,
                         "source": "Longpre et al. 2025 (ATLAS): K → 2K languages at equal loss"}

SYMBOLS = {"L_inf": "L∞", "alpha": "α", "beta": "β", "phi": "φ", "psi": "ψ", "alpha1": "α1", "alpha2": "α2"}
DELTA = 1e-3
"""Huber δ of Hoffmann et al. (on log-loss; in loss units for a linear-space fit)."""
MIN_R2 = 0.9
EXTRA_POINTS = 3
"""A fit needs at least (free parameters + this) distinct points."""
_DECAY_BOUNDS, _SIGNED_BOUNDS, _COEF_BOUNDS = (0.0, 3.0), (-2.0, 2.0), (-30.0, 30.0)


def get_law(law: str | Law) -> Law:
    """A law by name (``atlas``, ``chinchilla``, ``vocab``, ``vocab_untied``) or the Law itself."""
    if isinstance(law, Law):
        return law
    if law not in LAWS:
        raise XlmrError(f"unknown law {law!r}; laws: {', '.join(LAWS)}")
    return LAWS[law]


def _sym(name: str) -> str:
    base, sep, rest = name.partition("[")  # a per-language constant: L_inf[en] -> L∞[en]
    return SYMBOLS.get(base, base) + sep + rest


def _fmt(v: float, sig: int = 3) -> str:
    if v is None or not np.isfinite(v):
        return "nan" if v is None or np.isnan(v) else ("∞" if v > 0 else "−∞")
    return f"{v:.{sig}g}" if abs(v) < 1e4 and (abs(v) >= 1e-3 or v == 0) else f"{v:.{sig}e}"


def fmt_interval(value: float, lo: float, hi: float, sig: int = 3) -> str:
    """``0.34 [0.30, 0.38]``; a value without a finite interval says so."""
    if not (np.isfinite(lo) or np.isfinite(hi)) and not (np.isinf(lo) and np.isinf(hi)):
        return f"{_fmt(value, sig)} [no interval]"
    return f"{_fmt(value, sig)} [{_fmt(lo, sig)}, {_fmt(hi, sig)}]"


def _param_names(law: Law, levels: Sequence[str] = ()) -> tuple[str, ...]:
    consts = [f"{law.constant}[{g}]" for g in levels] if levels else [law.constant]
    return (*consts, *(t.coef for t in law.terms), *law.exponents)


# ---------------------------------------------------------------- the engine


def _huber(r: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Huber loss and its derivative."""
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta)), np.clip(r, -delta, delta)


class _Model:
    """A law laid out on a data set: centred log variables, which exponents and terms the data identify, and
    the map from the parameter vector θ = [constant, log-coefficients (centred), exponents] to predictions."""

    def __init__(self, law: Law, X: np.ndarray, space: str, levels: Sequence[str] = ()):
        self.law, self.space = law, space
        self.levels = tuple(levels)
        """Names of the groups that each have their own constant (``constant_by``); empty: one constant."""
        self.n_const = max(1, len(self.levels))
        logx = np.log(X)  # (n, v)
        self.log_ref = logx.mean(axis=0)  # geometric means: the centre
        self.const_var = np.ptp(logx, axis=0) < 1e-9 if len(X) else np.ones(len(law.variables), bool)
        vidx = {v: j for j, v in enumerate(law.variables)}
        varying = {law.variables[j] for j in range(len(law.variables)) if not self.const_var[j]}
        # an exponent is identified if it multiplies a variable that varies; a term is kept if any of its
        # variables varies (a term in constant variables only is one more constant)
        ident = {law.resolve(e) for t in law.terms for v, e, _ in t.powers if v in varying}
        self.exponents = [e for e in law.free_exponents if e in ident]
        self.terms = [t for t in law.terms if any(v in varying for v, _, _ in t.powers)]
        self.dropped = [t for t in law.terms if t not in self.terms]
        self.eidx = {e: k for k, e in enumerate(self.exponents)}
        self.vidx = vidx
        # (term, variable, exponent index, sign) of the identified powers; the others are fixed by the data
        self.powers = [(i, vidx[v], self.eidx[law.resolve(e)], s) for i, t in enumerate(self.terms)
                       for v, e, s in t.powers if law.resolve(e) in self.eidx]
        self.unknown = [(i, vidx[v]) for i, t in enumerate(self.terms) for v, e, _ in t.powers
                        if law.resolve(e) not in self.eidx]
        self.n_params = self.n_const + len(self.terms) + len(self.exponents)
        self.param_names = _param_names(law, self.levels)
        self.const_names = self.param_names[:self.n_const]

    def z(self, X: np.ndarray) -> np.ndarray:
        return np.log(X) - self.log_ref

    def _M(self, Z: np.ndarray) -> np.ndarray:
        """(exponents, terms · n): d t_i / d p_k, flattened for one matmul."""
        M = np.zeros((len(self.exponents), len(self.terms), len(Z)))
        for i, j, k, s in self.powers:
            M[k, i] += s * Z[:, j]
        return M.reshape(len(self.exponents), -1)

    def _split(self, theta):
        m, g = len(self.terms), self.n_const
        return theta[:g], theta[g:g + m], theta[g + m:]

    def forward(self, theta, Z, g, M=None):
        """Predicted loss (n,), log-space: log L̂; linear: L̂; and d out / d t_i (terms, n), d out / d c (n,).
        ``g``: each row's constant (index into the groups; zeros with one constant)."""
        c, a, p = self._split(theta)
        c = c[g]
        M = self._M(Z) if M is None else M
        n = Z.shape[0]
        T = a[:, None] + (p @ M).reshape(len(a), n)  # (terms, n)
        if self.space == "log":  # log L̂ = logsumexp(c, t_1, ..., t_m)
            top = np.maximum(T.max(axis=0), c)
            e0, eT = np.exp(c - top), np.exp(T - top)
            tot = e0 + eT.sum(axis=0)
            return top + np.log(tot), eT / tot, e0 / tot
        eT = np.exp(T)
        return c + eT.sum(axis=0), eT, np.ones(n)

    def objective(self, theta, Z, g, M, target, delta, weight=None):
        out, w, w0 = self.forward(theta, Z, g, M)
        r = out - target
        h, dh = _huber(r, delta)
        if weight is not None:  # each row's Huber loss times its weight (1 / its standard error, mean 1)
            h, dh = h * weight, dh * weight
        gi = w * dh  # (terms, n)
        grad = np.concatenate([np.bincount(g, weights=w0 * dh, minlength=self.n_const), gi.sum(axis=1),
                               M @ gi.ravel()])
        scale = len(target) * delta
        return float(h.sum() / scale), grad / scale

    def predict(self, theta, X: np.ndarray, g: np.ndarray) -> np.ndarray:
        """Predicted loss in loss units; NaN where the data fixed an exponent that this X would need, or where
        the row's group had no constant fitted (``g`` = −1)."""
        Z = self.z(X)
        out = self.forward(theta, Z, np.maximum(g, 0))[0]
        pred = np.exp(out) if self.space == "log" else out
        bad = g < 0
        for _i, j in self.unknown:
            bad |= np.abs(Z[:, j]) > 1e-9
        for t in self.dropped:
            for v, _, _ in t.powers:
                bad |= np.abs(Z[:, self.vidx[v]]) > 1e-9
        return np.where(bad, np.nan, pred)

    def bounds(self, y: np.ndarray) -> list[tuple[float, float]]:
        if self.space == "log":
            lo = float(np.log(y.min()))
            cb = (lo - 15.0, float(np.log(y.max())) + 0.5)
        else:
            spread = max(float(np.ptp(y)), 1e-3 * float(np.abs(y).mean()), 1e-6)
            cb = (float(y.min()) - 100.0 * spread - 10.0, float(y.max()) + 10.0 * spread)
        eb = [_SIGNED_BOUNDS if e in self.law.signed else _DECAY_BOUNDS for e in self.exponents]
        return [cb] * self.n_const + [_COEF_BOUNDS] * len(self.terms) + eb

    def init_grid(self, y: np.ndarray, g: np.ndarray, max_inits: int, rng) -> list[np.ndarray]:
        """Starts on a grid: the constant(s) below each group's smallest loss, the coefficients and exponents."""
        low = np.array([y[g == k].min() if (g == k).any() else y.min() for k in range(self.n_const)])
        if self.space == "log":
            c0 = [np.log(low * f) for f in (0.95, 0.6, 0.2)]
            a0 = [float(np.log(y.mean() * f)) for f in (0.3, 0.03)]
        else:
            spread = max(float(np.ptp(y)), 1e-3 * float(np.abs(y).mean()), 1e-6)
            c0 = [low - spread * f for f in (0.1, 1.0, 3.0)]
            a0 = [float(np.log(spread * f)) for f in (1.0, 0.1)]
        e0 = [[-0.1, 0.15] if e in self.law.signed else [0.2, 0.5, 1.0] for e in self.exponents]
        axes = [c0] + [a0] * len(self.terms) + e0
        n = math.prod(len(a) for a in axes)
        if n <= max_inits:
            return [np.hstack(point).astype(float) for point in itertools.product(*axes)]
        picks = rng.choice(n, size=max_inits, replace=False)
        out = []
        for flat in sorted(picks):
            point, rest = [], int(flat)
            for a in reversed(axes):
                rest, i = divmod(rest, len(a))
                point.append(a[i])
            out.append(np.hstack(point[::-1]).astype(float))
        return out

    def fit(self, Z, g, target, bounds, starts, delta, weight=None) -> list[tuple[float, np.ndarray]]:
        """L-BFGS-B from each start; (objective, θ) sorted best first (failed starts dropped)."""
        from scipy.optimize import minimize

        M = self._M(Z)
        out = []
        for x0 in starts:
            x0 = np.clip(x0, [b[0] for b in bounds], [b[1] for b in bounds])
            with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)
                res = minimize(self.objective, x0, args=(Z, g, M, target, delta, weight), jac=True,
                               method="L-BFGS-B",
                               bounds=bounds, options={"maxiter": 2000, "ftol": 1e-10, "gtol": 1e-8})
            if np.isfinite(res.fun) and np.all(np.isfinite(res.x)):
                out.append((float(res.fun), res.x))
        out.sort(key=lambda t: t[0])
        return out

    def reported(self, theta) -> dict[str, float]:
        """θ → the law's parameters in original units (NaN for what the data do not identify)."""
        law = self.law
        out = dict.fromkeys(self.param_names, math.nan)
        c, a, p = self._split(theta)
        for name, ck in zip(self.const_names, c):
            if self.space == "log":
                out[name] = math.exp(ck)
            else:
                out[name] = float(-ck if law.negative_constant else ck)
        for e in law.exponents:
            r = law.resolve(e)
            if r in self.eidx:
                out[e] = float(p[self.eidx[r]])
        for i, t in enumerate(self.terms):
            log_coef = a[i]
            for v, e, s in t.powers:
                log_coef -= s * out[e] * self.log_ref[self.vidx[v]]
            out[t.coef] = float(np.exp(log_coef)) if np.isfinite(log_coef) else math.nan
        return out
