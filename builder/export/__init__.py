"""Images out of and into the store: OCI and docker archives, a flattened directory, rootfs import."""
