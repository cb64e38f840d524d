"""The layer cache: keys from ops and their inputs, records of built layers, and transfer
of those records between machines."""
