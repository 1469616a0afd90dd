"""The store: the one DuckDB file, the synthetic sample that fills it, and the registry of
services and areas that real records are imported against."""
