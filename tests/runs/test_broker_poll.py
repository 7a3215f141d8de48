"""The ORM broker's adaptive poll (runs/orm_broker.py): the rule, without sleeping."""

from runs.orm_broker import next_poll

FAST, IDLE = 0.05, 1.0


def pauses(outcomes):
    pause, seen = None, []
    for found in outcomes:
        pause = next_poll(pause, found, FAST, IDLE)
        seen.append(pause)
    return seen


def test_it_polls_fast_while_messages_come():
    assert pauses([True, True, True]) == [FAST, FAST, FAST]


def test_it_doubles_after_each_empty_poll_up_to_the_idle_cap():
    assert pauses([False] * 8) == [FAST, 0.1, 0.2, 0.4, 0.8, IDLE, IDLE, IDLE]


def test_it_is_back_to_the_fast_poll_the_moment_a_message_is_found():
    assert pauses([False] * 10 + [True, False])[-2:] == [FAST, 2 * FAST]


def test_an_idle_cap_below_the_fast_poll_keeps_the_fast_poll():
    assert next_poll(FAST, False, FAST, 0.01) == FAST


def test_the_cluster_uses_it_with_the_orm_broker(settings, db):
    from django_q.brokers import get_broker

    from runs.orm_broker import AdaptiveORM

    if settings.REDIS_URL:  # the Redis broker blocks on its own
        assert "broker_class" not in settings.Q_CLUSTER
    else:
        assert isinstance(get_broker(), AdaptiveORM)


def test_an_enqueue_wakes_a_pusher_waiting_out_a_long_pause(settings, db):
    import threading

    from runs.orm_broker import AdaptiveORM, wake_pusher

    settings.LAKEFLOW_HOME = settings.LAKEFLOW_HOME / "wake-test"  # an address of its own
    pusher = AdaptiveORM(list_key="wake-test")
    pusher._bound()
    assert pusher._inbox, "the first pusher on this machine listens for wake-ups"
    pusher._pause = 600.0
    waiting = threading.Thread(target=pusher.wait, args=(600.0,))
    waiting.start()

    wake_pusher()
    waiting.join(timeout=120)

    assert not waiting.is_alive(), "the wake-up did not end the wait"
    assert pusher._pause is None, "after a wake-up the next polls are fast"
    pusher._inbox.close()


def test_a_second_pusher_on_the_machine_polls_without_a_wake_up_socket(settings, db):
    from runs.orm_broker import AdaptiveORM

    settings.LAKEFLOW_HOME = settings.LAKEFLOW_HOME / "two-pushers"
    first, second = AdaptiveORM(list_key="a"), AdaptiveORM(list_key="b")
    assert first._bound() is not None
    assert second._bound() is None
    first._inbox.close()
