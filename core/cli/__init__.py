"""The command line: `equiscope COMMAND`, one module per command (main.py parses and dispatches)."""
