"""How loanwatch schedules dbt's build: the longest chain first, checks beside the models."""

from __future__ import annotations

import networkx as nx

from loanwatch.transform import _build_schedule


class _Manifest:
    """GraphQueue.get() returns manifest.expect(node_id); the ids are enough here."""

    def expect(self, node_id):
        return node_id


def _order(queue) -> list[str]:
    """One thread: take the first node that is ready, run it, repeat."""
    order = []
    while not queue.empty():
        node = queue.get(block=False)
        order.append(node)
        queue.mark_done(node)
    return order


def test_the_node_with_the_longest_chain_after_it_runs_first():
    from dbt.graph.queue import GraphQueue

    # a -> b -> c -> d; x -> y; checks on a and x. After a, both b (3 nodes still to run after it)
    # and the checks are ready: b goes first, and its chain before x's.
    graph = nx.DiGraph([
        ("model.p.a", "model.p.b"), ("model.p.b", "model.p.c"), ("model.p.c", "model.p.d"),
        ("model.p.a", "test.p.check_a"), ("model.p.x", "model.p.y"), ("model.p.x", "test.p.check_x"),
    ])
    with _build_schedule():
        order = _order(GraphQueue(graph.copy(), _Manifest(), set(graph)))
    assert order == ["model.p.a", "model.p.b", "model.p.c", "model.p.x", "model.p.d", "model.p.y",
                     "test.p.check_a", "test.p.check_x"]
    # dbt's own order, by depth, then name, is back after the build
    assert _order(GraphQueue(graph.copy(), _Manifest(), set(graph))) == [
        "model.p.a", "model.p.x", "model.p.b", "model.p.y", "test.p.check_a", "test.p.check_x",
        "model.p.c", "model.p.d"]
