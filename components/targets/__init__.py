"""Where plans become resources: the Docker target, the Kubernetes target, and the target's own refusals (preflight)."""
