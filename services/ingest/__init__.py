"""Ingest: the HTTP front door for scrapers. Validates, screens duplicates, produces to
``content.raw`` and answers 202 only once the broker has the item."""
