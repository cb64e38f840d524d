"""The command line: the only place that prints, picks a frontend or wires the builder up."""
