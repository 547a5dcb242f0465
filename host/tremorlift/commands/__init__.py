"""Sub-commands of the ``tremorlift`` command line.

Each module here defines ``ORDER`` (an int, for the help listing), ``add_parser(subparsers)``
which registers the sub-command, and ``run(args) -> int``. ``tremorlift.cli`` finds them by
listing this package, so adding a command touches no other file. Modules only parse and
delegate to the library; heavy imports happen inside ``run``.
"""
