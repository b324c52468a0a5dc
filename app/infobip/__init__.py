"""Infobip: the HTTP client, its status and error codes, its limits, and phone numbers."""
