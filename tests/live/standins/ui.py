"""Stand-in for the TensorZero UI (no image here): `/health`, as the real UI answers it on port 4000."""

from standin import JSON, serve

serve(
    4000,
    {
        ("GET", "/health"): lambda request: (200, {"status": "ok"}, JSON),
        ("GET", "/"): lambda request: (200, "<html><body>TensorZero UI stand-in</body></html>", "text/html"),
    },
)
