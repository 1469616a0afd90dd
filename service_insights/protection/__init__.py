"""Disclosure control: what every number passes through before anyone sees or exports it."""
