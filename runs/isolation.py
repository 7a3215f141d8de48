"""One broken item never stops the loop it is in.

The clock and the workers go over many runs, attempts and triggers at a time. If one of them
makes the code raise (a bug, or settings stored before today's checks existed), that item alone
is set aside with the reason recorded on it, where users look (a run's state message, a
trigger's last_error), and the loop goes on with the others. A database that cannot be reached
is nobody's fault: that error ends the whole pass, and the next pass tries again.
"""

import logging

from django.db import InterfaceError, OperationalError, connection, transaction

log = logging.getLogger(__name__)

INFRASTRUCTURE_ERRORS = (OperationalError, InterfaceError)


def isolated(handle, item, on_failure):
    """handle(item); if it raises, on_failure(item, reason) records why. Returns what handle
    returned, or None. Inside a transaction, handle runs in a savepoint, which a failure rolls
    back: the surrounding transaction (a finishing attempt's, say) goes on. Outside one, handle
    takes its own transactions, and no write lock is held around it."""
    try:
        if connection.in_atomic_block:
            with transaction.atomic():
                return handle(item)
        return handle(item)
    except INFRASTRUCTURE_ERRORS:
        raise
    except Exception as exc:
        log.exception("%s failed for %r", getattr(handle, "__name__", "a step"), item)
        try:
            if connection.in_atomic_block:
                with transaction.atomic():
                    on_failure(item, f"{type(exc).__name__}: {exc}")
            else:
                on_failure(item, f"{type(exc).__name__}: {exc}")
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception:  # not even the reason could be written: the log has both; go on
            log.exception("could not record why %r failed", item)
        return None


def each_isolated(items, handle, on_failure):
    """isolated() for each item; the sum of what the handled ones returned (work found)."""
    return sum(isolated(handle, item, on_failure) or 0 for item in items)
