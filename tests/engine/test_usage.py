"""The cost of an attempt: CPU-hours and GB-hours (10^9 bytes) at the configured prices."""

import pytest

from runs.engine.usage import attempt_cost


def test_one_cpu_hour_costs_the_cpu_price():
    assert attempt_cost(cpu_seconds=3600, peak_memory_bytes=0, execution_seconds=3600,
                        price_per_cpu_hour=0.05, price_per_gb_hour=0.005) == pytest.approx(0.05)


def test_a_gigabyte_means_ten_to_the_ninth_bytes_held_over_the_execution_time():
    cost = attempt_cost(cpu_seconds=0, peak_memory_bytes=10**9, execution_seconds=1800,
                        price_per_cpu_hour=0.05, price_per_gb_hour=0.004)
    assert cost == pytest.approx(0.002)  # 1 GB for half an hour
    gibibyte = attempt_cost(cpu_seconds=0, peak_memory_bytes=2**30, execution_seconds=3600,
                            price_per_cpu_hour=0, price_per_gb_hour=1.0)
    assert gibibyte == pytest.approx(1.073741824)


def test_cpu_and_memory_add_up():
    cost = attempt_cost(cpu_seconds=1.0, peak_memory_bytes=200 * 10**6, execution_seconds=2.0,
                        price_per_cpu_hour=0.05, price_per_gb_hour=0.005)
    assert cost == pytest.approx(1 / 3600 * 0.05 + 0.2 * 2 / 3600 * 0.005)


def test_free_prices_cost_nothing():
    assert attempt_cost(cpu_seconds=50, peak_memory_bytes=10**10, execution_seconds=60,
                        price_per_cpu_hour=0, price_per_gb_hour=0) == 0
