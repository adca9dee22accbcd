"""The Faust application: settings, topics shared by several agents, and discovery of the agent modules.

Faust's "large project" layout: this module holds the app; each concern (ingest, enrich, storied, detect, metrics,
notify) lives in its own module holding its agents, tables and views, found by ``app.discover()``. Nothing
happens at import: :func:`configure` builds the app from a :class:`~streams.settings.Settings` (the CLI
calls it with the settings it built from flags and environment), and the agent modules, imported after it,
read ``app``, ``settings`` and the shared topics from here.
"""
from __future__ import annotations

import faust

from . import faust_fixes, tansu
from .kafka import faust_credentials
from .settings import Settings

AGENT_MODULES = ["streams.ingest", "streams.enrich", "streams.storied", "streams.detect", "streams.metrics",
                 "streams.notify", "streams.web.views"]

# Tables hold plain JSON keys and values (the app's default serializer for topics is raw bytes).
JSON_SCHEMA = faust.Schema(key_serializer="json", value_serializer="json")

_CONFIGURED = ("app", "settings", "valid_topic", "arrivals_topic", "scored_topic", "enriched_topic",
               "deadletter_topic", "alerts_topic", "alerts_deadletter_topic", "timeline_topic")


def configure(settings: Settings) -> faust.App:
    """Build the app and the shared topics from ``settings``; call once, before the agent modules load."""
    if "app" in globals():
        raise RuntimeError("streams.app is already configured")
    faust_fixes.apply()
    (settings.data_dir / "faust").mkdir(parents=True, exist_ok=True)
    options = dict(
        broker=settings.broker,
        broker_credentials=faust_credentials(settings),
        autodiscover=AGENT_MODULES,
        store="memory://",
        processing_guarantee="at_least_once",
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication,
        topic_allow_declare=True,
        key_serializer="raw",
        value_serializer="raw",
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        datadir=str(settings.data_dir / "faust"),
        producer_acks=-1,
        # Faust's own default (60 s) would slow a group join; Tansu needs shorter still (FAUST_SETTINGS).
        broker_session_timeout=10,
        broker_heartbeat_interval=3,
        stream_wait_empty=True,
        # Table writes are one changelog record each: let them batch (a produce request per record costs the
        # worker and the broker more than the records themselves).
        producer_linger=0.05,
        producer_max_batch_size=256 * 1024,
    )
    if settings.on_tansu:
        options.update(tansu.FAUST_SETTINGS)
    app = faust.App(settings.app_id, **options)
    # Topics written by one agent and read by another are declared here; each agent module declares its inputs.
    globals().update(
        app=app,
        settings=settings,
        valid_topic=app.topic(settings.valid_topic, partitions=settings.partitions),
        arrivals_topic=app.topic(settings.arrivals_topic, partitions=settings.partitions),
        scored_topic=app.topic(settings.scored_topic, partitions=settings.partitions),
        enriched_topic=app.topic(settings.enriched_topic, partitions=settings.partitions),
        deadletter_topic=app.topic(settings.deadletter_topic, partitions=settings.partitions),
        alerts_topic=app.topic(settings.alerts_topic, partitions=settings.partitions),
        alerts_deadletter_topic=app.topic(settings.alerts_deadletter_topic, partitions=settings.partitions),
        timeline_topic=app.topic(settings.timeline_topic, partitions=settings.partitions),
    )
    # The incident room (streams/web/) serves "/"; Faust's placeholder index ({"status": "OK"}) would take it.
    blueprints = app.web.blueprints
    blueprints._enabled = [(prefix, bp) for prefix, bp in blueprints._enabled if "production_index" not in str(bp)]
    if settings.on_tansu:
        tansu.apply_workarounds(app)
    return app


def __getattr__(name: str):
    if name in _CONFIGURED:
        raise RuntimeError(f"streams.app.{name} is not there yet: call streams.app.configure(settings) before "
                           "importing the agent modules (the `ascolta worker` command does)")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


async def declare_topics(settings: Settings) -> None:
    """Create the pipeline's topics with the configured partitions before any client subscribes.

    Brokers that auto-create topics on a metadata request (Tansu always, Kafka with
    ``auto.create.topics.enable``) would otherwise create them with their own default partition count,
    and tables co-partitioned with them would refuse to start. Existing topics are checked, not changed.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    from .kafka import client_options

    names = [settings.valid_topic, settings.arrivals_topic, settings.scored_topic, settings.enriched_topic,
             settings.deadletter_topic, settings.alerts_topic, settings.alerts_deadletter_topic,
             settings.timeline_topic, settings.ticks_topic, *settings.raw_topics]
    # keyed topics whose partitions tables are co-partitioned with (dedup by mention, stories and detect by brand)
    copartitioned = {settings.valid_topic, settings.arrivals_topic, settings.scored_topic, settings.enriched_topic,
                     settings.ticks_topic}
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [NewTopic(n, settings.partitions, settings.replication) for n in missing]
                )
            except TopicAlreadyExistsError:
                pass  # another worker of the group created them first
        for description in await admin.describe_topics(names):
            count = len(description.get("partitions", []))
            if description["topic"] in copartitioned and count != settings.partitions:
                raise RuntimeError(
                    f"topic {description['topic']!r} has {count} partitions but ASCOLTA_PARTITIONS is "
                    f"{settings.partitions}: the tables co-partitioned with it must match it"
                )
    finally:
        await admin.close()
