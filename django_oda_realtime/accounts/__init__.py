"""Accounts: the JWT token views and tokens, revocation, login throttling, and the receivers that
close or re-check sockets when a user changes."""
