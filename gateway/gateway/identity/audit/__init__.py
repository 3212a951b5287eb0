"""The audit trail: what every identity feature records (sign-ins, failures, keys, user and
team changes), and its admin-only list."""
