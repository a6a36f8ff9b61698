"""The seed's URLs on the host PMOVES runs on, as prod publishes them: plain HTTP on loopback, HTTPS beyond it.

What the seed's runbook calls on its host: `http://localhost:3030` (the edge's plain listener, keys still
asked for inference) and `curl http://localhost:8123/ping` (ClickHouse's HTTP port, on loopback only). The
edge's answers on those listeners are run on real nginx in tests/services/test_edge_access.py.
"""

import ipaddress

from components.services import clickhouse, edge
from components.services.clickhouse import SERVICE as CLICKHOUSE
from components.services.edge import SERVICE as EDGE


def test_prod_publishes_the_seeds_urls_on_loopback_and_only_https_beyond(deployments):
    spec = deployments["prod"].spec
    ports = {(p.ip, p.external): p.internal for p in spec.placement(EDGE).ports}
    outside = spec.bind_address(EDGE)
    assert not ipaddress.ip_address(outside).is_loopback
    assert ports[("127.0.0.1", 3030)] == edge.PORT  # http://localhost:3030, as the seed writes it
    assert ports[(outside, 3030)] == edge.TLS_PORTS[edge.PORT]
    # Beyond loopback, only the HTTPS listeners.
    assert {internal for (ip, _), internal in ports.items() if ip != "127.0.0.1"} == set(edge.TLS_PORTS.values())


def test_prod_publishes_clickhouse_http_on_loopback_only(deployments):
    spec = deployments["prod"].spec
    [published] = spec.placement(CLICKHOUSE).ports
    assert (published.ip, published.external, published.internal) == ("127.0.0.1", 8123, clickhouse.PORT)
