"""Email-driven ticketing gateway for e-commerce disputes."""

__version__ = "0.1.0"
