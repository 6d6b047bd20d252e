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


def test_a_node_leaves_the_queue_only_when_a_thread_is_free():
    import threading

    from dbt.task.build import BuildTask

    class Task:
        """What BuildTask.handle_job_queue reads of its task, with one thread."""

        run_count, num_nodes, selected_unit_tests, model_to_unit_test_map = 1, 2, [], {}
        config = type("Config", (), {"threads": 1})()

        def __init__(self):
            self.taken, self.submitted = [], []
            self.job_queue = self

        def get(self):  # the job queue: hands out nodes in order
            node = type("Node", (), {"unique_id": f"model.p.n{len(self.taken)}", "resource_type": "model"})()
            self.taken.append(node.unique_id)
            return node

        def handle_job_queue_node(self, node, pool, callback):  # submitted to the pool, not run
            self.submitted.append(callback)

    task, finished = Task(), []
    with _build_schedule():
        handle = BuildTask.handle_job_queue
        handle(task, None, finished.append)
        second = threading.Thread(target=handle, args=(task, None, finished.append))
        second.start()
        second.join(0.5)
        # the only thread is busy with n0: n1 stays in dbt's queue
        assert second.is_alive() and task.taken == ["model.p.n0"]
        task.submitted[0]("n0 done")
        second.join(5)
        assert not second.is_alive() and task.taken == ["model.p.n0", "model.p.n1"]
    assert finished == ["n0 done"]
    assert BuildTask.handle_job_queue is not handle  # dbt's own is back


def test_the_dbt_internals_loanwatch_patches_are_still_there():
    """transform/__init__.py replaces or reads five private parts of dbt (docs/architecture.md,
    "dbt internals"). A dbt upgrade that moves one fails here, by name, before a build misbehaves."""
    import importlib.metadata
    import inspect

    from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    from dbt.compilation import Compiler
    from dbt.graph.queue import GraphQueue
    from dbt.task.build import BuildTask

    def params(fn) -> list[str]:
        return list(inspect.signature(fn).parameters)

    assert importlib.metadata.version("dbt-core").startswith("1.11."), "dbt-core upgraded: re-check the patches"
    assert importlib.metadata.version("dbt-duckdb").startswith("1.11."), "dbt-duckdb upgraded: re-check the patches"
    assert params(BuildTask.compile_manifest) == ["self"]
    assert "add_test_edges" in params(Compiler.compile)
    assert params(BuildTask.handle_job_queue) == ["self", "pool", "callback"]
    assert params(GraphQueue._get_scores) == ["self", "graph"]
    assert isinstance(DuckDBConnectionManager.__dict__["open"], classmethod)
    assert params(DuckDBConnectionManager.open) == ["connection"]
    assert "_ENV" in DuckDBConnectionManager.__dict__
