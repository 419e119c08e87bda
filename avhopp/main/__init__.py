"""The start page, health check and language switch."""
