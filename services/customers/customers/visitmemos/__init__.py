"""Visit memos: the visits service's completed visits, on the card and in the full file."""
