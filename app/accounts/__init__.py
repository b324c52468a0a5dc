"""API tokens, admin users and the login throttle."""
