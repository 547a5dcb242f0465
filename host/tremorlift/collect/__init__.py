"""The live path: one channel per wearable, the session collector that turns their events into
live state and alerts, the dashboard and the lifter's feedback. Only the ``collect`` set-up may
reach the digital twin, and only to start it; everything else reaches a wearable through a
``tremorlift.transport.Link``."""
