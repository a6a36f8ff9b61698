"""The model catalog (PMOVES's TOML) and its translation into tensorzero.toml, with the routing of Ollama models."""
