"""A tiny app built with the kit, used by the kit's own tests and the foundation benchmark."""
