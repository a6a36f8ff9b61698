"""Live: a config change replaces the gateway without a gap at the public port.

On the local engine, with the real edge (the stand-in OpenResty image running the rendered files) in front of
the gateway, the gateway is replaced as `pulumi up` replaces it (tests/live/swap.py) while requests arrive
through the edge at a fixed rate: not one fails, and a streamed answer opened before the swap completes.
The latency figures of the same procedure are in benchmarks/bench_gateway_swap.py and docs/edge.md.
"""

from components.services.gateway import SERVICE as GATEWAY

from .swap import swap_under_load

RATE = 25  # requests per second through the edge, each a real TensorZero embedding route and a ClickHouse row


def test_replacing_the_gateway_fails_no_request_and_a_stream_open_across_it_completes(live_stack):
    swap = swap_under_load(live_stack, RATE)
    assert swap.new != swap.old and live_stack.fleet.containers[GATEWAY.role].name == swap.new
    during, _, _ = swap.figures(during=True)
    assert during >= RATE, "the swap was over before any load ran across it"
    failed = swap.failed()
    assert failed == [], f"{len(failed)} of {len(swap.outcomes)} failed, first: {failed[:3]}"
    # Opened on the old gateway, it outlives it: the old one drained it after SIGTERM.
    assert swap.stream_error == "" and swap.stream_done, swap.stream_error
    assert len(swap.stream_chunks) >= 8, swap.stream_chunks
    live_stack.wait_monitoring_green()
