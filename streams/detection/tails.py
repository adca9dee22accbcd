"""Tail probabilities behind every detector decision, as -log10 p ("surprise"): how unusual a window's count
is under a negative binomial, and its negative (positive) share under a beta-binomial.

Plain Python (lgamma, Numerical Recipes continued fractions): tens of microseconds per call, no scipy.
"""
from __future__ import annotations

import math

_LN10 = math.log(10.0)
_MAX_SURPRISE = 300.0  # -log10 p cap: beyond this nothing changes for a human reader


def _nonzero(value: float) -> float:
    """Lentz's guard: a continued-fraction term that would be zero becomes tiny instead."""
    return 1e-300 if abs(value) < 1e-300 else value


def _lentz_step(a_n: float, b_n: float, c: float, d: float) -> tuple[float, float, float]:
    """One modified-Lentz step of a continued fraction with terms a_n / b_n: the new c, d and h's factor."""
    d = 1.0 / _nonzero(a_n * d + b_n)
    c = _nonzero(b_n + a_n / c)
    return c, d, d * c


def _log_gamma_p(a: float, x: float) -> float:
    """log of the regularised lower incomplete gamma P(a, x) (Numerical Recipes series / continued fraction)."""
    if x <= 0.0:
        return -math.inf
    log_front = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1.0:
        term = total = 1.0 / a
        ap = a
        for _ in range(10_000):
            ap += 1.0
            term *= x / ap
            total += term
            if term < total * 1e-13:
                break
        return log_front + math.log(total)
    # Q(a, x) by Lentz's continued fraction; P = 1 - Q is not small here.
    b = x + 1.0 - a
    c = 1.0 / 1e-300
    d = 1.0 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        c, d, delta = _lentz_step(an, b, c, d)
        h *= delta
        if abs(delta - 1.0) < 1e-13:
            break
    q = math.exp(log_front) * h
    return math.log(max(1.0 - q, 1e-300))


def _beta_cf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = _nonzero(d)
    d = 1.0 / d
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        c, d, delta = _lentz_step(aa, 1.0, c, d)
        h *= delta
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        c, d, delta = _lentz_step(aa, 1.0, c, d)
        h *= delta
        if abs(delta - 1.0) < 1e-13:
            break
    return h


def _log_beta_i(a: float, b: float, x: float) -> float:
    """log of the regularised incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return -math.inf
    if x >= 1.0:
        return 0.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return log_front + math.log(_beta_cf(a, b, x)) - math.log(a)
    tail = math.exp(log_front) * _beta_cf(b, a, 1.0 - x) / b
    return math.log(max(1.0 - tail, 1e-300))


def count_surprise(observed: float, mean: float, alpha: float) -> float:
    """-log10 P(X >= observed) for X ~ NegBin(mean, alpha) (Poisson when alpha*mean is negligible).

    Why a count tail and not a z-score: at 0.4 mentions per bucket a z-score calls 3 mentions a 4-sigma
    event; the Poisson tail knows that happens every ~100 buckets.
    """
    k = math.ceil(observed)
    if k <= 0 or k <= mean:
        return 0.0
    mean = max(mean, 1e-9)
    if alpha * mean < 1e-6:
        log_p = _log_gamma_p(k, mean)
    else:
        r = 1.0 / alpha
        log_p = _log_beta_i(k, r, mean / (mean + r))
    return min(_MAX_SURPRISE, max(0.0, -log_p / _LN10))


def share_surprise(successes: int, trials: int, base_share: float, concentration: float) -> float:
    """-log10 P(S >= successes) for S ~ BetaBinomial(trials, base_share, concentration).

    Sums the tail with the pmf ratio recurrence (exact, O(tail length)); the beta part admits that a
    brand's true share wobbles from bucket to bucket, so a small pooled sample is not over-trusted.
    """
    if trials <= 0 or successes <= 0:
        return 0.0
    p = min(max(base_share, 1e-4), 1.0 - 1e-4)
    a, b = p * concentration, (1.0 - p) * concentration
    if successes <= trials * a / (a + b):
        return 0.0
    n, k = trials, successes
    log_pmf = (
        math.lgamma(n + 1)
        - math.lgamma(k + 1)
        - math.lgamma(n - k + 1)
        + math.lgamma(k + a)
        + math.lgamma(n - k + b)
        - math.lgamma(n + a + b)
        - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))
    )
    total, term = 1.0, 1.0
    for j in range(k, n):
        term *= (n - j) / (j + 1) * (j + a) / (n - j - 1 + b)
        total += term
        if term < total * 1e-12:
            break
    return min(_MAX_SURPRISE, max(0.0, -(log_pmf + math.log(total)) / _LN10))
