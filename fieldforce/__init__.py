"""Running the whole product: the app registry, migrations of every schema, the local stack."""
