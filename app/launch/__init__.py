"""Launching campaigns: the request, the CSV form, the launch sequence, submission, dispatch."""
