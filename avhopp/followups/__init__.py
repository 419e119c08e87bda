"""Follow-ups, recurrence, the reminder outbox and sending, and the Min dag dashboards."""
