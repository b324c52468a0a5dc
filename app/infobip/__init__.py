"""Infobip: the HTTP client, its status and error codes, and phone numbers."""
