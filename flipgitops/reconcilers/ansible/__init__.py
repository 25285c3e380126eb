"""flipgitops' Ansible content, shipped inside the wheel and found with importlib.resources.

`playbooks/` holds one playbook per host step (facts, provision, deploy_release, …), each a
single `flipgitops_step` task; `action_plugins/flipgitops_step.py` fetches the step's entry
and arguments from the parent over the in-memory channel (`adapters/hosts_channel.py`) and
runs them on the host as one host program (`host_program.py`): the `flipgitops_host/`
package, piped to the host's Python. That package is stdlib-only and also imported by the
controller (the compose invocation, the tree digest, the kit file's rules), so each rule has
one home.
"""

from __future__ import annotations

from importlib.resources import as_file, files
from importlib.resources.abc import Traversable

PACKAGE = __name__


def content() -> Traversable:
    """The directory holding ansible.cfg, playbooks/, action_plugins/ and flipgitops_host/."""
    return files(PACKAGE)


__all__ = ["PACKAGE", "as_file", "content"]
