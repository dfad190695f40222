from __future__ import annotations

from perftop.symbols.memo import Generations


def test_bounded_and_the_hot_entries_survive_turnovers() -> None:
    cache: Generations[int, str] = Generations(bound=100)
    cache.put(-1, "hot")
    for key in range(10_000):  # a stream of one-off entries, as fork churn makes
        cache.put(key, "cold")
        assert len(cache) <= 100
        assert cache.get(-1) == "hot"  # used all along: never dropped (clear-all dropped it)
    assert cache.get(0) is None  # long unused: gone


def test_a_hit_in_the_old_generation_moves_it_young() -> None:
    cache: Generations[str, int] = Generations(bound=4)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("c", 3)  # young was full (2): a, b are now old
    assert cache.get("a") == 1  # back to young
    cache.put("d", 4)  # young full (c, a): they turn old, b is dropped
    assert cache.get("b") is None
    assert cache.get("a") == 1 and cache.get("c") == 3


def test_aging_keeps_what_the_last_two_intervals_used() -> None:
    cache: Generations[int, int] = Generations(bound=1_000_000)
    for key in range(50_000):  # one big interval: far under the bound, all kept
        cache.put(key, key)
    cache.age()
    assert all(cache.get(key) == key for key in range(0, 50_000, 2))  # used again: kept
    cache.age()
    assert cache.get(1) is None  # unused for a whole interval: gone
    assert cache.get(2) == 2
    assert len(cache) == 25_000
