"""One stack resolved: the registry of services, the loader, the cross-service rules, the planner and the guards."""
