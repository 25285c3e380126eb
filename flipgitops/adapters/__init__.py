"""The only code that touches the outside world: AWS, hosts, terraform, git, state store."""
