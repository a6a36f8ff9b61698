"""The TensorZero UI answers `/health`."""

from .probes import endpoint, wait_until_ok


def test_health(outputs, budget, http):
    wait_until_ok(budget, http, "ui", endpoint(outputs, "ui") + "/health")
