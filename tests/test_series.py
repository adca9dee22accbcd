"""Per-brand metric series stay bounded whatever the number of brands (streams/detection/series.py)."""
from __future__ import annotations

from streams.detection.series import OTHER, BrandSeries

START = 1_793_577_600


def test_only_open_busy_and_listed_brands_are_labelled_by_name():
    series = BrandSeries(top_n=2, always=["Listed Co"])
    for i in range(1000):
        series.observe(f"Brand {i}", START, count=i % 7, incident_open=(i == 3))
    series.refresh(START + 300)
    shown = {name for name in (f"Brand {i}" for i in range(1000)) if series.label(name) == name}
    assert len(shown) == 3 and "Brand 3" in shown  # the two busiest and the one with an open incident
    assert series.label("Brand 1") == OTHER and series.label("LISTED co") == "LISTED co"


def test_a_brand_that_drops_out_has_its_series_removed_and_a_forgotten_one_is_gone():
    series = BrandSeries(top_n=1)
    series.observe("Acme", START, count=10, incident_open=False)
    series.refresh(START)
    assert series.label("Acme") == "Acme"
    series.observe("Bolt", START + 7200, count=10, incident_open=False)  # Acme's volume has decayed since
    assert series.refresh(START + 7200) == ["Acme"] and series.label("Acme") == OTHER
    series.forget("Bolt")
    assert series.refresh(START + 7500) == [] and series.label("Bolt") == OTHER


def test_an_incident_shows_its_brand_at_once_and_its_resolution_lets_it_go():
    series = BrandSeries(top_n=0)
    series.observe("Acme", START, count=1, incident_open=True)
    assert series.label("Acme") == "Acme"  # before any refresh: the opening bucket's gauges are set
    series.observe("Acme", START + 300, count=0, incident_open=False)
    assert series.label("Acme") == OTHER and series.refresh(START + 300) == ["Acme"]
