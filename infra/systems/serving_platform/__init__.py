"""Seed 001, the online path: the agent serving app with its code deployed, its always-on LLM, Lakebase memory
and prompts. `settings.py` holds the settings (no Pulumi imports, so the stack model can nest them cheaply);
`system.py` the component that builds everything (`ServingPlatform`, `serving_names`)."""
