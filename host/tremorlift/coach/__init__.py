"""What the lifter and coach read after a session: per-device results and the HTML report."""
