"""What flipgitops drives on trust hosts (the Ansible content, as package data)."""
