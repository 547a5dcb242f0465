"""The twin's virtual radio: Bumble controllers on one shared link, MicroPython's ``bluetooth``
module on top of a Bumble device, the bleak backend that drives the collector's central, and
the faults that can be injected on the way."""
