"""Errors the command line reports as one line with exit status 2."""


class UserError(Exception):
    """Bad input or a condition the user can fix: one clear line, exit status 2, no traceback.

    The message should name the file or device and the problem, e.g.
    ``"session.csv: line 12: time goes backwards (3.20 s after 3.25 s)"``.
    """

    exit_status = 2
