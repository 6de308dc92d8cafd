"""pykex.testing: real-kernel test environments that clean up after themselves.

:class:`VethNamespace` gives packet programs a private network: a namespace
joined to the root namespace by a veth pair, removed on exit.
"""

from .netns import NetworkSetupError, VethNamespace, free_subnet, namespaces

__all__ = ["NetworkSetupError", "VethNamespace", "free_subnet", "namespaces"]
