"""flipgitops' Ansible content, shipped inside the wheel and found with importlib.resources.

`playbooks/` holds one playbook per host step (facts, provision, deploy_release, …), each a
single `flipgitops_step` task; `action_plugins/flipgitops_step.py` fetches the step's module
arguments from the parent over the in-memory channel (`adapters/hosts_channel.py`);
`library/` holds the modules that run on trust hosts and `module_utils/flipgitops_host/`
their shared, pure helpers (also imported by the controller, so each rule has one home).
"""

from __future__ import annotations

from importlib.resources import as_file, files
from importlib.resources.abc import Traversable

PACKAGE = __name__


def content() -> Traversable:
    """The directory holding ansible.cfg, playbooks/, library/, plugins and module_utils/."""
    return files(PACKAGE)


__all__ = ["PACKAGE", "as_file", "content"]
