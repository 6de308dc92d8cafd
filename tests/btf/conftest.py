import os
import shutil

import pytest

from pykex.btf import Spec, load_vmlinux
from pykex.btf.reader import VMLINUX_BTF_PATH


@pytest.fixture(scope="session")
def vmlinux() -> Spec:
    if not VMLINUX_BTF_PATH.exists():
        pytest.skip(f"kernel exposes no BTF at {VMLINUX_BTF_PATH}")
    return load_vmlinux()


@pytest.fixture(scope="session")
def root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (bpf(2), mount(2))")


def require_tools(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} installed")
