"""Crisis detection as plain code, run the same way by the stream (``streams.detect``) and offline
(``ascolta detect``): ``detector`` (with ``tails``), ``digest`` (what a bucket was about), ``buckets``
(counting, lateness, closing), ``alert`` (a decision as an alert event) and ``offline``."""
