"""Prometheus metrics of a worker, served by Faust's web server at ``/metrics``.

Names follow Prometheus conventions: ``ascolta_`` prefix, units in the name, ``_total`` counters, and
label sets bounded by configuration (sources, languages, sentiment labels, reason codes). Brand labels are
bounded too, whatever the number of brands: brands with an open incident, the ``ASCOLTA_METRICS_TOP_BRANDS``
busiest and the ``ASCOLTA_METRICS_BRANDS`` list are labelled by name, every other brand as ``other``
(:mod:`streams.detection.series`).
"""
from __future__ import annotations

import asyncio
import logging

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from faust.web import Request, Response, View

from .app import app, settings
from .detection.series import BrandSeries
from .text import brand_allow_list

log = logging.getLogger(__name__)

MENTIONS_RECEIVED = Counter(
    "ascolta_mentions_received_total", "Raw messages read from the raw topics", ["topic"]
)
MENTIONS_ENRICHED = Counter(
    "ascolta_mentions_total",
    "Mentions enriched and published, by brand, source, detected language and sentiment",
    ["brand", "source", "language", "sentiment"],
)
DEADLETTERED = Counter(
    "ascolta_deadlettered_total", "Messages sent to the dead-letter topic, by stage and reason", ["stage", "reason"]
)
INTERNAL_ERRORS = Counter(
    "ascolta_internal_errors_total",
    "Messages dead-lettered as internal_error: an unexpected exception while handling them, by stage and "
    "exception type (zero in a healthy pipeline; each one is a bug to fix)",
    ["stage", "error"],
)
TABLE_VALUES_REPLACED = Counter(
    "ascolta_table_values_replaced_total",
    "Stored table values that could not be loaded (old or corrupt state) and were replaced by fresh ones",
    ["table"],
)
ENRICH_BATCH_SIZE = Histogram(
    "ascolta_enrich_batch_size_mentions",
    "Mentions per sentiment batch",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
ENRICH_BATCH_SECONDS = Histogram(
    "ascolta_enrich_batch_duration_seconds",
    "Time to run the sentiment model on one batch",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ENRICH_LATENCY_SECONDS = Histogram(
    "ascolta_enrich_latency_seconds",
    "Time from ingest to the enriched record being published, per mention",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
LATE_MENTIONS = Counter(
    "ascolta_late_mentions_total",
    "Enriched mentions whose time bucket the detector had already closed: counted in the window history, "
    "too late for the detector's decision",
    ["brand"],
)
BUCKET_OBSERVED = Gauge(
    "ascolta_detector_observed_mentions", "Mentions in the brand's last closed bucket", ["brand"]
)
BUCKET_EXPECTED = Gauge(
    "ascolta_detector_expected_mentions", "Baseline expectation for the brand's last closed bucket", ["brand"]
)
NEGATIVE_SHARE = Gauge(
    "ascolta_detector_negative_share_ratio", "Negative share of the brand's last closed bucket", ["brand"]
)
SEVERITY = Gauge(
    "ascolta_detector_severity", "Severity of the brand's open incident (0 when none), by kind", ["brand", "kind"]
)
INCIDENTS_OPEN = Gauge("ascolta_incidents_open", "Open incidents per brand and kind", ["brand", "kind"])
ALERT_EVENTS = Counter("ascolta_alert_events_total", "Alert events published", ["kind", "event"])
TICKS_HELD = Counter(
    "ascolta_clock_ticks_held_total",
    "Wall-clock ticks not sent because the partition's mentions still waited upstream of the detector",
)
CONSUMER_LAG = Gauge(
    "ascolta_consumer_lag_messages",
    "Messages not yet consumed per assigned partition (high watermark minus position)",
    ["topic", "partition"],
)
DELIVERIES = Counter(
    "ascolta_deliveries_total",
    "Alert events handled per notification route: delivered, deadlettered, or duplicate (already delivered)",
    ["channel", "route", "outcome"],
)
DELIVERY_ATTEMPTS = Counter(
    "ascolta_delivery_attempts_total",
    "Attempts to send an alert event, by result (success or the failure reason code)",
    ["channel", "route", "result"],
)
DELIVERY_SECONDS = Histogram(
    "ascolta_delivery_duration_seconds",
    "Time to deliver or dead-letter an alert event on one route, retries and rate limiting included",
    ["channel", "route"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
ALERTS_DEADLETTERED = Counter(
    "ascolta_alerts_deadlettered_total",
    "Alert events sent to the alerts dead-letter topic after a route's retry budget, by reason",
    ["channel", "reason"],
)


BRAND_SERIES = BrandSeries(settings.metrics_top_brands, (brand_allow_list(settings.metrics_brands) or {}).values())


def brand_label(brand: str) -> str:
    """The ``brand`` label value for a brand's series: its name, or ``other`` (see the module doc)."""
    return BRAND_SERIES.label(brand)


def forget_brand(brand: str) -> None:
    """Drop every series labelled with ``brand``: brands come and go, and their series must not pile up."""
    BRAND_SERIES.forget(brand)
    drop_series(brand)


def drop_series(brand: str) -> None:
    """Remove the series labelled with ``brand`` (its state stays: it may be shown again later)."""
    for metric in (MENTIONS_ENRICHED, LATE_MENTIONS, BUCKET_OBSERVED, BUCKET_EXPECTED, NEGATIVE_SHARE, SEVERITY,
                   INCIDENTS_OPEN):
        label_sets = {tuple(sample.labels.values()) for family in metric.collect() for sample in family.samples
                      if sample.labels.get("brand") == brand}
        for labels in label_sets:
            metric.remove(*labels)


@app.page("/metrics")
class MetricsView(View):
    """Prometheus scrape endpoint on the worker's web port."""

    async def get(self, request: Request) -> Response:
        return self.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])


@app.timer(interval=5.0)
async def update_consumer_lag() -> None:
    """Lag from the high watermark of fetch responses (right on Kafka and on Tansu, unlike ListOffsets)."""
    consumer = app.consumer
    try:
        assignment = consumer.assignment()
    except Exception:  # not yet assigned
        return
    for tp in assignment:
        try:
            position = await consumer.position(tp)
            highwater = consumer.highwater(tp)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as exc:  # a partition being revoked mid-scan
            log.debug("lag of %s unavailable: %s", tp, exc)
            continue
        if position is not None and highwater is not None:
            CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, highwater - position))
