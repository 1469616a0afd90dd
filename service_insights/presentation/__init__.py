"""A protected result as people see it: Plotly figures and the captions under them, the
same on screen, in exported files and in the report pack."""
