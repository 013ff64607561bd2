"""Long-poll slots: a bound per process and per tenant, given back after each wait."""

from api.waits import WaitSlots


def test_slots_are_bounded_per_process_and_per_tenant_and_given_back():
    slots = WaitSlots(per_process=4)
    with slots.slot("a") as a1, slots.slot("a") as a2, slots.slot("a") as a3:
        assert (a1, a2, a3) == (True, True, False)  # one tenant: half the process's slots
        with slots.slot("b") as b1, slots.slot("b") as b2, slots.slot("c") as c1:
            assert (b1, b2, c1) == (True, True, False)  # the process is full
    assert slots.held == {}
    with slots.slot("c") as again:
        assert again
