"""Users: who may sign in, with which role, in which team; deactivation ends their sessions."""
