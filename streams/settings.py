"""Configuration from the environment (12-factor): every knob is an ``ASCOLTA_*`` variable.

One frozen dataclass so the worker, the CLI and the tests read the same values. This is the only module
that reads the process environment: the CLI builds ``Settings`` from it plus its flags
(:meth:`Settings.from_environ`) and hands the result on; nothing writes ``os.environ`` back. Secrets named
by arbitrary variables (a route's ``webhook_url_env``) are looked up in :attr:`Settings.environ`, the
snapshot taken when the settings were built.
"""
from __future__ import annotations

import dataclasses
import os
import types
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

DEFAULT_DATA_DIR = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "ascolta"


def _env(name: str, default: str) -> str:
    return os.environ.get(f"ASCOLTA_{name}", default)


def _env_int(name: str, default: int) -> int:
    raw = _env(name, str(default))
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"ASCOLTA_{name} must be an integer, got {raw!r}") from None


def _env_optional_int(name: str) -> int | None:
    return _env_int(name, 0) if _env(name, "").strip() else None


def _env_float(name: str, default: float) -> float:
    raw = _env(name, str(default))
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"ASCOLTA_{name} must be a number, got {raw!r}") from None


def _env_bool(name: str, default: bool) -> bool:
    raw = _env(name, "1" if default else "0").strip().lower()
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"ASCOLTA_{name} must be a boolean (1/0, true/false), got {raw!r}")


@dataclass(frozen=True)
class Settings:
    # Kafka connection
    broker: str = field(default_factory=lambda: _env("BROKER", "kafka://127.0.0.1:9092"))
    broker_compat: str = field(default_factory=lambda: _env("BROKER_COMPAT", "kafka"))  # kafka | tansu
    security_protocol: str = field(default_factory=lambda: _env("SECURITY_PROTOCOL", "PLAINTEXT"))
    sasl_mechanism: str = field(default_factory=lambda: _env("SASL_MECHANISM", "PLAIN"))
    sasl_username: str = field(default_factory=lambda: _env("SASL_USERNAME", ""))
    sasl_password: str = field(default_factory=lambda: _env("SASL_PASSWORD", ""), repr=False)
    ssl_cafile: str = field(default_factory=lambda: _env("SSL_CAFILE", ""))
    ssl_certfile: str = field(default_factory=lambda: _env("SSL_CERTFILE", ""))
    ssl_keyfile: str = field(default_factory=lambda: _env("SSL_KEYFILE", ""))
    partitions: int = field(default_factory=lambda: _env_int("PARTITIONS", 4))
    replication: int = field(default_factory=lambda: _env_int("REPLICATION", 1))
    app_id: str = field(default_factory=lambda: _env("APP_ID", "ascolta"))

    # Topics: ASCOLTA_RAW_TOPICS is a comma-separated list, or a regex when ASCOLTA_RAW_TOPIC_PATTERN is set.
    raw_topics: tuple[str, ...] = field(
        default_factory=lambda: tuple(t.strip() for t in _env("RAW_TOPICS", "mentions.raw").split(",") if t.strip())
    )
    raw_topic_pattern: str = field(default_factory=lambda: _env("RAW_TOPIC_PATTERN", ""))
    valid_topic: str = field(default_factory=lambda: _env("VALID_TOPIC", "mentions.valid"))
    enriched_topic: str = field(default_factory=lambda: _env("ENRICHED_TOPIC", "mentions.enriched"))
    # Internal, keyed by brand: each valid mention's arrival (for the detect stage's volume, before its sentiment)
    # and each scored mention with its sentence embedding (for the brand-keyed story stage).
    arrivals_topic: str = field(default_factory=lambda: _env("ARRIVALS_TOPIC", "mentions.arrivals"))
    scored_topic: str = field(default_factory=lambda: _env("SCORED_TOPIC", "mentions.scored"))
    deadletter_topic: str = field(default_factory=lambda: _env("DEADLETTER_TOPIC", "mentions.deadletter"))
    alerts_topic: str = field(default_factory=lambda: _env("ALERTS_TOPIC", "alerts"))

    # Ingest
    dedup_horizon_s: int = field(default_factory=lambda: _env_int("DEDUP_HORIZON_SECONDS", 24 * 3600))
    max_future_s: int = field(default_factory=lambda: _env_int("MAX_FUTURE_SECONDS", 24 * 3600))
    max_age_s: int = field(default_factory=lambda: _env_int("MAX_AGE_SECONDS", 365 * 24 * 3600))
    # Brand allow-list: "Acme,Lumen Bank" or "@/path/to/file" (one per line); empty accepts every brand.
    brands: str = field(default_factory=lambda: _env("BRANDS", ""))

    # Enrichment
    sentiment_model: str = field(default_factory=lambda: _env("SENTIMENT_MODEL", "default"))
    threads: int | None = field(default_factory=lambda: _env_optional_int("THREADS"))  # None: the CPUs allowed
    batch_size: int = field(default_factory=lambda: _env_int("BATCH_SIZE", 64))
    batch_within_s: float = field(default_factory=lambda: _env_float("BATCH_WITHIN_SECONDS", 0.5))

    # Detection
    bucket_s: int = field(default_factory=lambda: _env_int("BUCKET_SECONDS", 300))
    lateness_s: int = field(default_factory=lambda: _env_int("ALLOWED_LATENESS_SECONDS", 60))
    # How long (wall clock) a bucket waits for mentions ingest announced but the model has not scored yet.
    arrival_hold_s: int = field(default_factory=lambda: _env_int("ARRIVAL_HOLD_SECONDS", 600))
    # A brand silent (no mention, no open incident) for longer than this loses its state and metric series.
    brand_state_horizon_s: int = field(default_factory=lambda: _env_int("BRAND_STATE_HORIZON_SECONDS", 30 * 24 * 3600))
    # --- detect-state (issue 13): the detect stage's clock and per-brand metric series ---
    # A mention dated further ahead of the wall clock than this is dead-lettered by the detect stage instead of
    # moving its partition's watermark (ingest's ASCOLTA_MAX_FUTURE_SECONDS is the outer, coarser bound).
    max_future_skew_s: int = field(default_factory=lambda: _env_int("MAX_FUTURE_SKEW_SECONDS", 300))
    # How often each worker ticks its partitions of the enriched topic: quiet ones close buckets on the wall clock.
    clock_tick_s: float = field(default_factory=lambda: _env_float("CLOCK_TICK_SECONDS", 30.0))
    # Resolve an incident after this long without evidence (the detector's calm time).
    calm_s: int = field(default_factory=lambda: _env_int("CALM_SECONDS", 3600))
    # Per-brand metric series: brands with an open incident, the top N by mentions, and this opt-in list.
    metrics_top_brands: int = field(default_factory=lambda: _env_int("METRICS_TOP_BRANDS", 50))
    metrics_brands: str = field(default_factory=lambda: _env("METRICS_BRANDS", ""))

    # Notifications (streams/notify.py; routes in docs/alerting.md)
    notify_config: str = field(default_factory=lambda: _env("NOTIFY_CONFIG", ""))
    alerts_deadletter_topic: str = field(default_factory=lambda: _env("ALERTS_DEADLETTER_TOPIC", "alerts.deadletter"))
    delivery_max_attempts: int = field(default_factory=lambda: _env_int("DELIVERY_MAX_ATTEMPTS", 8))
    delivery_backoff_s: float = field(default_factory=lambda: _env_float("DELIVERY_BACKOFF_SECONDS", 1.0))
    delivery_max_backoff_s: float = field(default_factory=lambda: _env_float("DELIVERY_MAX_BACKOFF_SECONDS", 60.0))
    delivery_deadline_s: float = field(default_factory=lambda: _env_float("DELIVERY_DEADLINE_SECONDS", 300.0))
    delivery_timeout_s: float = field(default_factory=lambda: _env_float("DELIVERY_TIMEOUT_SECONDS", 10.0))
    delivery_retention_days: float = field(default_factory=lambda: _env_float("DELIVERY_RETENTION_DAYS", 30.0))

    # Worker
    data_dir: Path = field(default_factory=lambda: Path(_env("DATA_DIR", str(DEFAULT_DATA_DIR))))
    web_host: str = field(default_factory=lambda: _env("WEB_HOST", "127.0.0.1"))
    web_port: int = field(default_factory=lambda: _env_int("WEB_PORT", 6066))
    log_level: str = field(default_factory=lambda: _env("LOG_LEVEL", "info"))

    # Incident room (streams/web/, docs/incident-room.md)
    # Where people reach the incident room, e.g. https://ascolta.example.com: alerts then link their incident.
    public_url: str = field(default_factory=lambda: _env("PUBLIC_URL", "").strip().rstrip("/"))
    # Access token for the incident room pages: the value, or "@/path/to/file"; empty serves them to anyone.
    ui_token: str = field(default_factory=lambda: _env("UI_TOKEN", ""), repr=False)

    # The environment when these settings were built, read-only: for secrets a configuration names by variable.
    environ: Mapping[str, str] = field(
        default_factory=lambda: types.MappingProxyType(dict(os.environ)), repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.log_level.lower() not in {"debug", "info", "warning", "error"}:
            raise ValueError(f"ASCOLTA_LOG_LEVEL must be debug, info, warning or error, got {self.log_level!r}")
        if self.broker_compat not in {"kafka", "tansu"}:
            raise ValueError(f"ASCOLTA_BROKER_COMPAT must be 'kafka' or 'tansu', got {self.broker_compat!r}")
        if self.public_url and not self.public_url.startswith(("http://", "https://")):
            raise ValueError(f"ASCOLTA_PUBLIC_URL must be an http(s) URL, got {self.public_url!r}")
        for name in ("partitions", "replication", "batch_size", "bucket_s", "delivery_max_attempts"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @classmethod
    def from_environ(cls, **overrides: object) -> Settings:
        """Settings from the environment, with ``overrides`` (command-line flags) winning; None means unset."""
        given = {name: value for name, value in overrides.items() if value is not None}
        if "data_dir" in given:
            given["data_dir"] = Path(given["data_dir"])
        return dataclasses.replace(cls(), **given)

    @property
    def on_tansu(self) -> bool:
        """True when the broker is the embedded Tansu: turns its workarounds on (see docs/tansu.md)."""
        return self.broker_compat == "tansu"

    @property
    def timeline_topic(self) -> str:
        """Per-bucket chart points for the incident room, named after the alerts topic they go with."""
        return f"{self.alerts_topic}.timeline"

    def read_ui_token(self) -> str:
        """The incident room's token: ASCOLTA_UI_TOKEN itself, or the file it names as ``@path`` (stripped)."""
        if not self.ui_token.startswith("@"):
            return self.ui_token.strip()
        path = Path(self.ui_token[1:])
        try:
            token = path.read_text().strip()
        except OSError as exc:
            raise ValueError(f"ASCOLTA_UI_TOKEN names {path}, which cannot be read: {exc.strerror}") from None
        if not token:
            raise ValueError(f"ASCOLTA_UI_TOKEN names {path}, which is empty")
        return token

    @property
    def ticks_topic(self) -> str:
        """The detect stage's wall-clock ticks, co-partitioned with the enriched topic (streams/detect.py)."""
        return f"{self.app_id}-detect-ticks"

    @property
    def bootstrap_servers(self) -> str:
        """Broker URL list without the ``kafka://`` scheme, as aiokafka wants it."""
        return ",".join(u.split("://", 1)[-1] for u in self.broker.split(","))

    def describe(self) -> dict[str, object]:
        """Settings for logs, with secrets hidden."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.repr}

