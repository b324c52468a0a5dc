"""Delivery reports: parsing, the one recording path, parked reports, replay."""
