"""The platform's systems, one package or module each: its settings, its components and its declaration."""
