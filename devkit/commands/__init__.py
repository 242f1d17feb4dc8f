"""One module per command (or family); each exposes configure(parser, path) and run(args) -> int."""
