"""Storage, split by how it is accessed: ``data`` is the durable source of truth."""
