"""The management tree: nodes with DM properties, ACLs, URIs (DM 1.x URIs and DM 2.0 ClientURIs), DDF and TNDS.

``Tree`` is the one place where nodes change, so ACL checks, status codes, transactions and change
events cannot be bypassed by any protocol engine, local application or window.
"""

from emulator.tree.acl import Acl
from emulator.tree.errors import TreeError
from emulator.tree.tree import LOCAL, NodeInfo, Tree, TreeEvent

__all__ = ["LOCAL", "Acl", "NodeInfo", "Tree", "TreeError", "TreeEvent"]
