"""Operator and developer tools around the pipeline: the embedded broker, replay, the sample stream and the
demo. The worker never imports this package (tests/test_architecture.py checks it)."""
