"""Questions asked of the store: the query files and their headers, the scoped relations
they read, periods and selections, reference figures, and running a query to a protected
result (also the analysts' workbench)."""
