"""A host step that succeeded but whose record (the ledger) could not be written is that
action's failure, never an exception out of the apply (which would lose the report)."""

from __future__ import annotations

from flipgitops.engine.host_executors import _Batch
from flipgitops.engine.ports_hosts import HostResult, HostTarget, HostTask, StackInput
from flipgitops.errors import AwsError
from flipgitops.model.actions import Action, ActionKind
from tests.builders import manifest


def test_a_record_that_cannot_be_written_fails_the_action_only() -> None:
    m = manifest(trusts=2)
    calls: list[str] = []

    def done(action: Action, result: HostResult) -> None:
        calls.append(action.target)
        if action.target == "Trust_1":
            raise AwsError("AWS error while writing ledger s3://b/ledger/dev.json: NoSuchBucket")

    batch = _Batch(ActionKind.HOST_START_STACK, done=done)
    for t in m.trusts[:2]:
        action = Action(id=f"host.start_stack:{t.name}", kind=ActionKind.HOST_START_STACK,
                        target=t.name, params={"hub_tag": "v2.3.0", "fl_tag": "v2.3.0"})
        batch.actions[action.id] = action
        batch.tasks[action.id] = HostTask(HostTarget.of(m, t), StackInput())
    out = batch.finish({f"host.start_stack:{n}": HostResult(n, True, True, "up")
                        for n in ("Trust_1", "Trust_2")})
    assert calls == ["Trust_1", "Trust_2"]
    one, two = out["host.start_stack:Trust_1"], out["host.start_stack:Trust_2"]
    assert not one.ok and one.changed and "recording it failed" in one.message
    assert "NoSuchBucket" in one.message
    assert two.ok and two.message == "up"
