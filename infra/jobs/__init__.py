"""One module per system's jobs; `common` holds what every job shares."""
