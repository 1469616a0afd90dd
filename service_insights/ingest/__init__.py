"""Records in: a service's export read, checked against the import format, pseudonymised
and written to the store all-or-nothing."""
