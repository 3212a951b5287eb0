"""Teams: the tree that decides what managers see (a manager sees the teams they lead and
every team below them)."""
