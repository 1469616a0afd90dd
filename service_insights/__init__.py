"""Service Insights: a dashboard over anonymised domestic-abuse service records."""

__version__ = "0.1.0"
