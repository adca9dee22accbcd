"""Alert delivery: which routes want an event, what each channel's message says, and how it is sent.

Plain code, tested without a broker; :mod:`streams.notify` wires it to the ``alerts`` topic. The worker's
only entry points are :func:`streams.alerting.routes.load_routes` and :mod:`streams.alerting.delivery`.
"""
