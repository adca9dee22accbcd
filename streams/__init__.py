"""Ascolta: a mention stream processor (Faust agents on Kafka)."""
