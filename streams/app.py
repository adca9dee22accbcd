"""The Faust application: settings, topics shared by several agents, and discovery of the agent modules.

Faust's "large project" layout: this module creates the app; each concern (ingest, enrich, detect,
metrics) lives in its own module holding its agents, tables and views, found by ``app.discover()``.
"""
from __future__ import annotations

import faust

from . import faust_fixes
from . import settings as settings_module
from .kafka import faust_credentials

faust_fixes.apply()

settings = settings_module.load()
(settings.data_dir / "faust").mkdir(parents=True, exist_ok=True)

AGENT_MODULES = ["streams.ingest", "streams.enrich", "streams.detect", "streams.metrics", "streams.notify"]

app = faust.App(
    settings.app_id,
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
    # Faust's own default (60 s) makes a group join wait ~30 s on Tansu; 10 s is fine for Kafka too.
    broker_session_timeout=6 if settings.on_tansu else 10,
    broker_heartbeat_interval=1 if settings.on_tansu else 3,
    stream_wait_empty=True,
)

# Tables hold plain JSON keys and values (the app's default serializer for topics is raw bytes).
JSON_SCHEMA = faust.Schema(key_serializer="json", value_serializer="json")

# Topics written by one agent and read by another are declared here; each agent module declares its own inputs.
valid_topic = app.topic(settings.valid_topic, partitions=settings.partitions)
enriched_topic = app.topic(settings.enriched_topic, partitions=settings.partitions)
deadletter_topic = app.topic(settings.deadletter_topic, partitions=settings.partitions)
alerts_topic = app.topic(settings.alerts_topic, partitions=settings.partitions)
alerts_deadletter_topic = app.topic(settings.alerts_deadletter_topic, partitions=settings.partitions)

if settings.on_tansu:
    from .tansu import apply_workarounds

    apply_workarounds(app)


async def declare_topics() -> None:
    """Create the pipeline's topics with the configured partitions before any client subscribes.

    Brokers that auto-create topics on a metadata request (Tansu always, Kafka with
    ``auto.create.topics.enable``) would otherwise create them with their own default partition count,
    and tables co-partitioned with them would refuse to start. Existing topics are checked, not changed.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    from .kafka import client_options

    names = [settings.valid_topic, settings.enriched_topic, settings.deadletter_topic, settings.alerts_topic,
             settings.alerts_deadletter_topic, *settings.raw_topics]
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
            if description["topic"] in (settings.valid_topic, settings.enriched_topic) and count != settings.partitions:
                raise RuntimeError(
                    f"topic {description['topic']!r} has {count} partitions but ASCOLTA_PARTITIONS is "
                    f"{settings.partitions}: the tables keyed by brand must match it"
                )
    finally:
        await admin.close()
