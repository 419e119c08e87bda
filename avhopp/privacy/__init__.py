"""Data lifecycle: backup and restore, erasure, register extracts, retention."""
