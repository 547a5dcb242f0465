"""tremorlift: the host side of the tremorlift wearable (collector, analysis, digital twin)."""

__version__ = "0.1.0"
