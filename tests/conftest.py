import pytest


@pytest.fixture(autouse=True)
def fresh_graph_cache():
    """Graphs are cached per JobVersion id; tests that roll back reuse ids, production never does."""
    from runs import dispatch

    dispatch._graphs.clear()
    yield
    dispatch._graphs.clear()
