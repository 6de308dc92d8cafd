"""Spin lock test: locked updates, and an exception raised while holding the lock
(a port of Rex's ``spinlock_test``).

What it does
    Every packet updates a shared ``Account`` under its spin lock: it adds the
    packet's length to the balance and counts the packet. A packet whose first
    byte is 0xFF raises ``ValueError`` in the middle of the locked block, after
    the balance was changed but before the count: the runtime releases the
    lock before reporting the exception, so the next packet takes it again.
    (Updates made before the raise stay: a lock is not a transaction.)

How to run it
    ext = pykex.load("examples/rex/spinlock_test.py")
    ext.update.test_run(bytes(64))
    print(ext.accounts[0])
"""

from pykex import XDP_ABORTED, XDP_PASS, ArrayMap, SpinLock, Struct, XdpContext, u64, xdp


class Account(Struct):
    lock: SpinLock
    balance: u64
    packets: u64


accounts = ArrayMap[Account](max_entries=1)


def deposit(account: Account, amount: u64, poisoned: bool) -> None:
    with account.lock:
        account.balance += amount
        if poisoned:
            raise ValueError("poisoned packet; balance now", account.balance)
        account.packets += 1


@xdp(on_error=XDP_ABORTED)
def update(ctx: XdpContext) -> int:
    deposit(accounts[0], u64(len(ctx.packet)), ctx.packet[0] == 0xFF)
    return XDP_PASS
