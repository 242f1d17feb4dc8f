"""The conventions core: pure functions over strings. No I/O, no third-party imports."""
