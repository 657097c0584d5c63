"""Privacy and retention: erasure, export, retention jobs."""
