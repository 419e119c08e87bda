"""Field encryption for the ORM: data-key store, encrypted attributes, blind-index search."""
