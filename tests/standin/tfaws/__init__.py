"""A stand-in ``hashicorp/aws`` Terraform provider, for tests only.

Why: flipgitops' terraform mode must be shown refusing a FLIP change that would replace the
hub database or roll fl-server *with the real terraform binary*, and Terraform cannot plan an
``aws_*`` resource without a provider for it. The real provider cannot be downloaded here (no
registry access) and would call AWS. This package is a provider process that Terraform starts
and talks to exactly as it talks to the real one (go-plugin handshake, AutoMTLS, gRPC,
tfplugin6), installed through a CLI config ``filesystem_mirror``; the code under test is
unchanged.

It plays four resource types with the attribute names and replace-vs-update behaviour the
AWS provider documents (:mod:`.schemas` says where each fact comes from). It keeps no state
of its own (Terraform's state is the truth) and never calls AWS.

Modules: :mod:`.wire` (the protobuf wire format, hand-written for the few messages used),
:mod:`.cty` (Terraform's msgpack value encoding), :mod:`.schemas`, :mod:`.provider` (the
plan/apply logic, pure), :mod:`.server` (handshake, TLS, gRPC), :mod:`.install` (the mirror
and CLI config a test writes).
"""
