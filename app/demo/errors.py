class DemoError(Exception):
    """Something the person running the demo can fix, in one line."""
