"""The incident room: read-only web pages on the worker's web port (docs/incident-room.md).

``timeline`` (the chart point a closed bucket publishes), ``room`` (the view every worker builds from the
alerts and timeline topics) and ``pages`` (HTML, SVG and JSON) are plain code; ``views`` is the Faust wiring.
"""
