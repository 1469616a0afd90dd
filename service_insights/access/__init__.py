"""Who may see what: viewers and their grants (the one place a scope is narrowed), user
accounts and passwords, and the audit log of who did what."""
