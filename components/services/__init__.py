"""One module per service: its stack-file section (a ServiceSpec), its pure `plan(ctx)` and its SERVICE definition."""
