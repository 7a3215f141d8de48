"""What an attempt cost, from what it consumed and the configured prices. Pure.

GB means 10^9 bytes (as cloud prices count them), not 2^30. Memory is priced for the peak the
attempt's process tree reached, held over its whole execution time: the peak, not an average,
because that is what the machine had to keep free for it.
"""

GB = 10**9
SECONDS_PER_HOUR = 3600


def attempt_cost(*, cpu_seconds: float, peak_memory_bytes: int, execution_seconds: float,
                 price_per_cpu_hour: float, price_per_gb_hour: float) -> float:
    """cpu_seconds / 3600 * price_per_cpu_hour
    + peak_memory_bytes / 10^9 * execution_seconds / 3600 * price_per_gb_hour."""
    cpu_hours = cpu_seconds / SECONDS_PER_HOUR
    gb_hours = peak_memory_bytes / GB * execution_seconds / SECONDS_PER_HOUR
    return cpu_hours * price_per_cpu_hour + gb_hours * price_per_gb_hour
