"""Where a hub keeps its archive files: in git (archive/) or in an OCI registry."""
