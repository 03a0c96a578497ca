"""Acceptance gates and baseline comparison; importing registers them."""
