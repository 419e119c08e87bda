"""Anonymised statistics for the board and funders: counts with small cells suppressed."""
