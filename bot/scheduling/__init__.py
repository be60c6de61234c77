"""The scheduler only ticks: due rows are claimed from SQL and sent through the messenger."""
