"""Eight function calls in a row, each feeding the next; the result depends on the
packet so none folds away."""

from pykex import XdpContext, u32, xdp


def step1(x: u32) -> u32:
    return x * 3 + 1


def step2(x: u32) -> u32:
    return x * 3 + 2


def step3(x: u32) -> u32:
    return x * 3 + 3


def step4(x: u32) -> u32:
    return x * 3 + 4


def step5(x: u32) -> u32:
    return x * 3 + 5


def step6(x: u32) -> u32:
    return x * 3 + 6


def step7(x: u32) -> u32:
    return x * 3 + 7


def step8(x: u32) -> u32:
    return x * 3 + 8


@xdp
def call_chain(ctx: XdpContext) -> int:
    x = len(ctx.packet)
    x = step1(x)
    x = step2(x)
    x = step3(x)
    x = step4(x)
    x = step5(x)
    x = step6(x)
    x = step7(x)
    x = step8(x)
    return x
