"""One module per ``kiln`` command (or family of commands)."""
