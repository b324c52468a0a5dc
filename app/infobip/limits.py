"""Infobip's limits (INFOBIP.md §1 and §6), written once for ivrdesk and its fake."""

import re

# A message object carries 1 to 20,000 destinations.
MAX_DESTINATIONS_PER_MESSAGE = 20_000
# Above 2880 minutes (48 h) Infobip silently uses 2880; it is also the default.
MAX_VALIDITY_PERIOD = 2880
# A retry.maxCount above 4 silently becomes 4.
MAX_RETRY_COUNT = 4
# `from` is a numeric sender of 3 to 14 digits.
SENDER_MIN_DIGITS = 3
SENDER_MAX_DIGITS = 14
NUMERIC_SENDER = re.compile(f"[0-9]{{{SENDER_MIN_DIGITS},{SENDER_MAX_DIGITS}}}")

# GET /tts/3/logs (§6): the last 48 hours, at most 1000 entries a request, no cursor,
# 120 requests a minute.
LOGS_WINDOW_HOURS = 48
LOGS_MAX_LIMIT = 1000
LOGS_REQUESTS_PER_MINUTE = 120

# GET /voice/1/reports (§6): a page of at most 1000 reports (50 unless asked), each once.
REPORTS_MAX_LIMIT = 1000
