"""The fake Infobip: a real HTTP server speaking Infobip's wire format."""
