"""Signing in and out: the password and refresh-token grants, sessions (one refresh-token family
each), failed sign-ins, /me and one's own password."""
