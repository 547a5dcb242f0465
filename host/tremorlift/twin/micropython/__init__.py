"""The MicroPython twin: the firmware on the real MicroPython binary with the NimBLE host stack.

``build`` finds the binary (``make micropython-twin``), ``wearable`` runs one board per process
(``rom/`` is what runs inside MicroPython besides the firmware), ``fleet`` offers the CPython
twin's ``TwinFleet`` interface. See docs/architecture.md, "Digital twin".
"""
