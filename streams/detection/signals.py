"""Per-bucket signals of the detector that keep their own state: the tone drift and the reach watch.

Each signal is a small object over a plain JSON dict (held in ``DetectorState``, so it is saved and
restored with the rest of the detector) with its own ``update``: the detector calls it once per judged
bucket and reads its verdict. Empty buckets (no labelled mentions, no negative post) change neither, so a
brand's quiet hours can be skipped without stepping these signals.

* :class:`ToneDrift`: slow-burn tone shifts. The model labels a brand's ordinary mentions negative at a
  rate of its own, so the test is against the brand's own share, with the brand's own bucket-to-bucket
  spread: ``rho``, the intra-bucket correlation of labels (beta-binomial), estimated from the brand's
  buckets by moments and shrunk to a prior. For each direction (negative share: crisis; positive share:
  opportunity) and each shift size in ``drift_shifts`` a Bernoulli CUSUM adds the bucket's log-likelihood
  ratio of "share is baseline + shift" against "share is baseline", divided by the bucket's variance
  inflation 1 + (n - 1) rho (quasi-likelihood). Small shifts accumulate over hours, large ones within
  the hour, so several shift sizes are several horizons. The CUSUM also says since when the share has been
  up (the bucket where the statistic last left zero) and what it has been since (mentions and hits).
* :class:`ReachWatch`: a negative mention that reaches far more people than the brand's negative mentions
  usually do (a journalist, a large account): worth a heads-up before volume moves. It fires when a
  bucket's most-reached negative mention beats every day's record of the last ``watch_memory_days`` days
  (about one day in ``watch_memory_days + 1`` for ordinary traffic) and is ``watch_reach_ratio`` times the
  brand's typical reach per mention.
"""
from __future__ import annotations

import math
from typing import NamedTuple

DIRECTIONS = ("negative", "positive")  # the share each CUSUM watches; negative: crisis, positive: opportunity


def _llr(k: int, n: int, p0: float, p1: float) -> float:
    """Log-likelihood ratio (nats) of k hits in n trials under share p1 against share p0."""
    return k * math.log(p1 / p0) + (n - k) * math.log((1.0 - p1) / (1.0 - p0))


class Drift(NamedTuple):
    """The strongest drift of one direction: how far past its threshold and what it has been since."""

    direction: str
    ratio: float  # CUSUM / threshold: >= 1 is a drift
    nats: float  # the CUSUM itself
    since_index: int  # first bucket of the drift
    mentions: int  # labelled mentions since then
    hits: int  # of which in the direction (negative or positive)


class ToneDrift:
    """Share CUSUMs over several shift sizes, and the brand's own share spread (rho)."""

    def __init__(self, config, state: dict) -> None:
        self.config = config
        self.state = state
        if not state:
            state.update(
                # per direction: decayed sums of weight * rho estimate and of weight (see learn)
                moments={d: [0.0, 0.0] for d in DIRECTIONS},
                # per direction and UTC hour: decayed sums of (hits - n * overall share) and of n
                hourly={d: [[0.0, 0.0] for _ in range(24)] for d in DIRECTIONS},
                cusum={d: [[0.0, -1, 0, 0] for _ in config.drift_shifts] for d in DIRECTIONS},
            )

    def rho(self, direction: str, capped: bool = False) -> float:
        """The brand's intra-bucket label correlation for a direction: learnt, shrunk to the prior; ``capped``:
        at most the prior (days of small buckets estimate rho noisily, and the tests must not be blunter than
        with the prior alone)."""
        c = self.config
        weighted, weight = self.state["moments"][direction]
        prior = 1.0 / (c.share_concentration + 1.0)
        learnt = weighted / weight if weight > 0 else prior
        shrunk = (weight * learnt + c.share_prior_pairs * prior) / (weight + c.share_prior_pairs)
        return max(c.rho_floor, min(shrunk, prior) if capped else shrunk)

    def offset(self, direction: str, hour: int) -> float:
        """How far the share at this hour of the day sits from the brand's overall share: audiences change
        language and mood with the hour, and the model's bias differs by language. Shrunk towards 0 by a
        prior worth ``hourly_prior_mentions`` mentions."""
        residual, mentions = self.state["hourly"][direction][hour]
        return residual / (mentions + self.config.hourly_prior_mentions)

    def learn_hour(self, hour: int, n: int, hits: dict[str, int], overall: dict[str, float], rate: float,
                   weight: float = 1.0) -> None:
        """Learn the hour's offset from one bucket against the overall share (``rate``: per visit of the hour)."""
        for direction in DIRECTIONS:
            row = self.state["hourly"][direction][hour]
            row[0] = row[0] * (1.0 - rate) + weight * (hits[direction] - n * overall[direction])
            row[1] = row[1] * (1.0 - rate) + weight * n

    def learn(self, n: int, hits: dict[str, int], base: dict[str, float], labelled: float, rate: float,
              weight: float = 1.0) -> None:
        """Learn rho from one bucket: ((k - n p)^2 - n p q (1 + n / labelled)) / (n (n - 1) p q) has mean rho
        under a beta-binomial around a baseline p learnt from ``labelled`` mentions; weighted by n (n - 1), the
        pairs of mentions it compares, times ``weight`` (the caller's trust in the bucket: a surge's buckets
        count less). The squared residual is clipped at 4 standard deviations (Huber), so one odd
        bucket widens the tolerated spread only a little. A baseline of fewer than share_pool_min labelled
        mentions teaches nothing: its own error would read as spread."""
        if n < 2 or labelled < self.config.share_pool_min:
            return
        bound = 16.0
        for direction in DIRECTIONS:
            p = min(max(base[direction], 1e-3), 1.0 - 1e-3)
            var = p * (1.0 - p)
            z2 = min((hits[direction] - n * p) ** 2 / (n * var), bound)
            estimate = (z2 - 1.0 - n / labelled) / (n - 1)
            pairs = n * (n - 1.0) * weight
            moments = self.state["moments"][direction]
            moments[0] = moments[0] * (1.0 - rate) + pairs * estimate
            moments[1] = moments[1] * (1.0 - rate) + pairs

    def update(self, index: int, n: int, hits: dict[str, int], base: dict[str, float], labelled: float) -> None:
        """Add one bucket's labelled mentions to every CUSUM (n = 0: nothing changes). The variance of
        k - n p0 is inflated by the brand's rho and by the baseline share's own uncertainty (n / labelled,
        the labelled mentions behind it), so a young baseline cannot drift on its own error."""
        if n <= 0:
            return
        for direction in DIRECTIONS:
            p0 = min(max(base[direction], 1e-3), 0.95)
            inflation = 1.0 + (n - 1) * self.rho(direction, capped=True) + n / max(labelled, 1.0)
            k = hits[direction]
            for shift, row in zip(self.config.drift_shifts, self.state["cusum"][direction]):
                p1 = min(p0 + shift, 0.99)
                total = row[0] + _llr(k, n, p0, p1) / inflation
                if total <= 0.0:
                    row[:] = [0.0, -1, 0, 0]
                    continue
                if row[0] <= 0.0:
                    row[1], row[2], row[3] = index, 0, 0
                row[0], row[2], row[3] = total, row[2] + n, row[3] + k

    def strongest(self, direction: str) -> Drift:
        """The direction's CUSUM furthest past its threshold (ratio >= 1: a drift)."""
        threshold = self.config.drift_threshold
        nats, since, n, k = max(self.state["cusum"][direction], key=lambda row: row[0])
        return Drift(direction, nats / threshold, nats, int(since), int(n), int(k))

    def reset(self, direction: str | None = None) -> None:
        """Forget the accumulated evidence (after an incident), of one direction or both."""
        for d in DIRECTIONS if direction is None else (direction,):
            for row in self.state["cusum"][d]:
                row[:] = [0.0, -1, 0, 0]


class ReachWatch:
    """Daily records of the most-reached negative mention; a bucket beating all of them (and far above the
    brand's typical reach per mention) is a watch."""

    def __init__(self, config, state: dict) -> None:
        self.config = config
        self.state = state
        if not state:
            state.update(day=None, today=0.0, records=[])

    def update(self, day: int, negative_reach: float, typical_reach: float) -> float:
        """The bucket's watch strength: its most-reached negative mention over the threshold (>= 1: a watch;
        0 while fewer than ``watch_memory_days`` days are known). Rolls the daily records."""
        s, c = self.state, self.config
        if s["day"] is not None and day != s["day"]:
            missed = min(day - s["day"] - 1, c.watch_memory_days)  # days without a bucket had no negative post
            s["records"] = (s["records"] + [s["today"]] + [0.0] * max(0, missed))[-c.watch_memory_days:]
            s["today"] = 0.0
        s["day"] = day
        strength = 0.0
        if negative_reach > 0 and len(s["records"]) >= c.watch_memory_days and typical_reach > 0:
            threshold = max(max(s["records"]), c.watch_reach_ratio * typical_reach)
            strength = negative_reach / threshold if threshold > 0 else 0.0
        s["today"] = max(s["today"], negative_reach)
        return strength
