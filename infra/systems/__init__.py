"""The systems of the platform, one package each: its settings model, its components and its notes."""
