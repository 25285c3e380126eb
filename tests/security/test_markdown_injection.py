"""Issue 19: data never restructures a PR comment or a drift issue.

Markdown payloads go into every free-text manifest field that reaches a rendered plan or
drift report (trust names are constrained, so the values quoted in descriptions, notes and
changes: `hub.domain`, `images.registry`, `images.hub_tag`, `flip.ref`, `settings`) and into
live AWS and host text (rule descriptions, names in the registry and the admin API, the
admin API's regions, Terraform addresses, error messages, the registry-era evidence). The
real planner plans those worlds, the real renderers render them, and `check` reads the
comment two ways: line by line (every line starts the way one of ours does, fences and
`<details>` balance, no raw ``@`` or HTML outside code) and token by token with a CommonMark
parser (markdown-it, which rich brings): no heading, quote, nested list, link, image or HTML
that came from data, and no mention, autolink or issue reference in the text GitHub sees.
Every payload carries the marker ``PWN``; structure that holds it came from data.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from markdown_it import MarkdownIt

from flipgitops.core.drift import drift_report
from flipgitops.core.manifest_change import manifest_change
from flipgitops.core.planner import plan
from flipgitops.core.render import render_drift, render_observed, render_plan
from flipgitops.model.manifest import Manifest
from flipgitops.model.observed import (
    AdminTrust,
    IngressRule,
    ObservedAdminApi,
    ObservedFlipRelease,
    ObservedState,
    ObservedTrustApi,
)
from flipgitops.model.plan import PlanOptions
from tests.builders import (
    add_rule,
    commit_of,
    h,
    manifest,
    observed_matching,
    unreachable,
    with_database,
    with_host,
    with_registry_era,
    with_secret,
)

MARK = "PWN"
# The issue's own example: a `--base` manifest-change value that closes the code fence and
# opens a heading, `<details>`, an `@team` mention and raw HTML.
ISSUE_EXAMPLE = ("v2.4.0\n```\n# PWN approved by @team\n<details><summary>PWN</summary>\n"
                 "@team PWN <img src=x onerror=alert(1)><script>alert('PWN')</script>")
PAYLOADS = [
    ISSUE_EXAMPLE,
    "PWN`` ```` ` </details></summary> ~~~ PWN",
    "| PWN | injected | row |\n|---|---|---|\n| PWN | x | y |",
    "- PWN list\n> PWN quote\n1. PWN ordered\n+ PWN\n    PWN indented code",
    "[PWN](https://evil.example/) ![PWN](https://evil.example/x.png) <https://evil.example/PWN>",
    '%% PWN\n  n_x --> n_y["PWN"]\nclick n_x "https://evil.example"',
    "\x1b[2J\x1b]0;PWN\x07 \r\n# PWN\u2028## PWN",
    "&#64;PWN &lt;b&gt; \\@PWN @PWN-team PWN@evil.example www.evil.example/PWN #12 $PWN^2$",
    "<!-- PWN --> --> <a href='https://evil.example'>PWN</a>",
    "   PWN\u202eevil\u200b   **PWN** _PWN_ \\`PWN\\` \\| \\\\",
    "PWN\n---\nPWN\n===",
]

# --- the checker ---------------------------------------------------------------------------

OUR_LINE = re.compile(
    r"^(?:$|#{2,4} |- |\| |\|---|<details><summary>|</details>$|<!-- flipgitops-(?:plan|drift):"
    r"\w+ -->$|_|\*\*⚠️ Truncated|`{3,}|No actions|None: the manifest|Live state matches|"
    r"The nightly |JSON plan artifact: |\[Workflow run\]|Workflow run$|Last checked by |---$)")
IN_FENCE = {"diff": re.compile(r"^(?:[+~-] |… and \d+ more)"),
            "mermaid": re.compile(r'^(?:flowchart TD$|  n_\w+\["[A-Za-z0-9 _.,/+=…-]*<br/>'
                                  r'[A-Za-z0-9 _.,/+=…-]*"\]$|  n_\w+ --> n_\w+$)'),
            "": re.compile(r".*")}
OUR_TAGS = re.compile(r"^(?:<details>|<summary>|</summary>|</details>|<span>|</span>|"
                      r"<!-- flipgitops-\w+:\w+ -->)$")
CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
MENTION = re.compile(r"(?<![\w`])@[A-Za-z0-9]")
AUTOLINK = re.compile(r"(?i)\b(?:https?|ftp)://|\bwww\.|[\w.+-]+@[\w-]+\.[\w.]+")
ISSUE_REF = re.compile(r"(?<![\w&])#\d")


def _outside_code(line: str) -> str:
    return CODE_SPAN.sub(" ", line)


def _pipes(line: str) -> int:
    """Cell separators: pipes not escaped by an odd run of backslashes (code spans too)."""
    return len(re.findall(r"(?<!\\)(?:\\\\)*\|", line))


def check(doc: str, *, links: frozenset[str] = frozenset()) -> None:
    """Fail if any structure of ``doc`` came from data (see the module docstring)."""
    fence: tuple[str, int, str] | None = None
    depth = 0
    table: int | None = None
    for n, line in enumerate(doc.split("\n"), start=1):
        where = f"line {n}: {line!r}"
        assert "\x1b" not in line and "\r" not in line, where
        m = FENCE.match(line)
        if fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= fence[1] \
                    and not m.group(2).strip():
                fence = None
            else:
                assert IN_FENCE[fence[2]].match(line), f"data made a line in a fence: {where}"
                assert fence[2] != "mermaid" or "%%" not in line, where
            continue
        assert OUR_LINE.match(line), f"a line we did not write: {where}"
        if m:
            info = m.group(2).strip()
            assert info in IN_FENCE and MARK not in info, where
            fence = (m.group(1)[0], len(m.group(1)), info)
            continue
        rest = _outside_code(line)
        assert "@" not in rest, f"raw @ outside code: {where}"
        for tag in re.findall(r"<[^<>]*>?", rest):
            assert OUR_TAGS.match(tag), f"raw HTML from data: {tag!r} in {where}"
        assert not re.search(r"(?i)<(?:script|img|a |iframe)", rest), where
        for url in re.findall(r"(?<!\\)\]\(([^)]*)\)", rest):
            assert url in links, f"a link from data: {where}"
        assert not line.startswith("#") or MARK not in line, f"a heading from data: {where}"
        depth += rest.count("<details>") - rest.count("</details>")
        assert depth >= 0, f"</details> without <details>: {where}"
        if line.startswith("|"):
            if table is None:
                table = _pipes(line)
            assert _pipes(line) == table, f"a table cell split by data: {where}"
        else:
            table = None
    assert fence is None, "a code fence was left open"
    assert depth == 0, "a <details> was left open"
    _check_tokens(doc, links)


def _check_tokens(doc: str, links: frozenset[str]) -> None:
    parser = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    tokens = parser.parse(doc)
    lists = 0
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open":
            assert MARK not in tokens[i + 1].content, tokens[i + 1].content
        assert tok.type != "blockquote_open", "a blockquote"
        if tok.type in ("bullet_list_open", "ordered_list_open"):
            lists += 1
            assert lists == 1 and tok.type == "bullet_list_open", "a list from data"
        if tok.type in ("bullet_list_close", "ordered_list_close"):
            lists -= 1
        if tok.type == "html_block":
            for piece in re.findall(r"<[^>]*>", tok.content):
                assert OUR_TAGS.match(piece), piece
        if tok.type == "fence":
            assert tok.info in IN_FENCE, tok.info
        if tok.type == "code_block":
            raise AssertionError(f"an indented code block: {tok.content!r}")
        children = tok.children or []
        for j, child in enumerate(children):
            if child.type == "html_inline":
                assert OUR_TAGS.match(child.content), child.content
            if child.type in ("link_open", "image"):
                assert child.attrGet("href") in links, child.attrs
            if child.type == "text":
                text = child.content.replace("\u200b", " ")
                assert not MENTION.search(text), f"a mention: {child.content!r}"
                assert not AUTOLINK.search(text), f"an autolink: {child.content!r}"
                assert not ISSUE_REF.search(text), f"an issue reference: {child.content!r}"
                # a literal dollar is `<span>$</span>` (GitHub's advice); any other opens math
                alone = child.content == "$" and j > 0 and children[j - 1].content == "<span>"
                assert alone or "$" not in text, f"math: {child.content!r}"
            if child.type in ("em_open", "strong_open", "s_open"):
                assert MARK not in children[j + 1].content, f"emphasis: {children[j + 1].content!r}"


def check_text(out: str) -> None:
    assert "None" not in out
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2028\u2029]", out)


def test_the_checker_catches_what_it_must() -> None:
    """The checker is the test's eyes: each construct it forbids is caught."""
    good = "## flipgitops plan: `dev`\n\n- `+` `a@b`: x\n"
    check(good)
    for bad in ["## t\n\n# PWN", "## t\n\n```\n", "## t\n\n<details><summary>x</summary>\n",
                "## t\n\n- @team", "## t\n\n- <img src=x>", "## t\n\n> q",
                "## t\n\n| a | b |\n|---|---|\n| a | b | c |", "## t\n\n- [x](https://e)",
                "## t\n\n- a https://evil.example", "## t\n\n- a #12", "## t\n\n- - PWN"]:
        with pytest.raises(AssertionError):
            check(bad)


# --- worlds carrying the payloads ----------------------------------------------------------


def _manifest_with(payload: str) -> tuple[Manifest, Manifest]:
    """(base, head): the head quotes ``payload`` in every free-text field that reaches a
    plan (descriptions, notes, changes) and the manifest change."""
    base = manifest(2)
    hub = base.hub.model_copy(update={
        "domain": f"{payload}.example.org",
        "images": base.hub.images.model_copy(update={"registry": f"ghcr.io/{payload}",
                                                     "hub_tag": f"v2.4.0{payload}"}),
    })
    trusts = [base.trusts[0].model_copy(update={"settings": {"NUM_AVAILABLE_GPUS": payload}}),
              base.trusts[1]]
    head = base.model_copy(update={"hub": hub, "trusts": trusts,
                                   "flip": base.flip.model_copy(update={"ref": payload})})
    return base, head


def _live_with(payload: str, m: Manifest) -> tuple[ObservedState, PlanOptions]:
    """Live AWS and host text carrying ``payload``, and a Terraform plan naming it."""
    o = observed_matching(m)
    o = add_rule(o, IngressRule(cidr="198.51.100.66/32", from_port=8002, to_port=8002,
                                description=payload))
    o = add_rule(o, IngressRule(cidr="198.51.100.67/32", from_port=8002, to_port=8002,
                                description=f"flipgitops:{payload}"))
    admin = ObservedAdminApi(queried=True, ok=True, error=payload, trusts=(
        AdminTrust(name="Trust_1"), AdminTrust(name=payload, code=payload, region=payload,
                                                last_heartbeat=payload)))
    hub = o.hub.model_copy(update={"admin": admin})
    if hub.kits is not None:
        hub = hub.model_copy(update={"kits": hub.kits.model_copy(update={"error": payload})})
    o = o.model_copy(update={"hub": hub})
    o = with_secret(o, malformed=(payload,))
    o = with_database(o, status=payload, instance_class=payload)
    o = with_host(o, "Trust_2", trust_api=ObservedTrustApi(
        unauthorized=True, authenticated_as=payload, last_error=payload), egress_ip=payload)
    o = unreachable(o, "Trust_1", payload)
    tf = {"format_version": "1.2", "resource_changes": [
        {"address": f"aws_s3_bucket.{payload}", "type": "aws_s3_bucket",
         "change": {"actions": ["delete", "create"]}}]}
    return o, PlanOptions(terraform_plan=tf, prune=True)


def _renders(payload: str) -> list[tuple[str, str]]:
    """(what, markdown) for every comment these payloads can reach."""
    base, head = _manifest_with(payload)
    o = observed_matching(base)
    o = o.model_copy(update={"flip_release": ObservedFlipRelease(
        ref=payload, commit=commit_of("x"), tree_sha256=h("tree", "x"))})
    manifest_plan = plan(head, o)
    out = [("plan: manifest text", render_plan(manifest_plan, "markdown",
                                               manifest_change=manifest_change(base, head),
                                               artifact_name=f"plan-{payload}.json")),
           ("drift: manifest text", render_drift(drift_report(head, o), "markdown"))]
    live, options = _live_with(payload, base)
    out += [("plan: live text", render_plan(plan(base, live, options), "markdown")),
            ("drift: live text", render_drift(drift_report(base, live), "markdown")),
            ("observed: live text", render_observed(live, "markdown"))]
    era = with_registry_era(observed_matching(base), "secret", payload)
    out += [("plan: registry evidence", render_plan(plan(base, era), "markdown")),
            ("drift: registry evidence", render_drift(drift_report(base, era), "markdown"))]
    return out


@pytest.mark.parametrize("payload", PAYLOADS, ids=range(len(PAYLOADS)))
def test_payloads_never_restructure_plans_drift_or_observations(payload: str) -> None:
    for what, doc in _renders(payload):
        assert MARK in doc, f"{what}: the payload must reach the comment for this to mean much"
        try:
            check(doc)
        except AssertionError as exc:
            raise AssertionError(f"{what}: {exc}") from None


def test_the_payloads_reach_every_route() -> None:
    """Each free-text route really carries data into the comment (else the test above
    would check nothing for it)."""
    docs = dict(_renders(ISSUE_EXAMPLE.replace("PWN", "ROUTE")))
    assert "ROUTE" in docs["plan: manifest text"].split("### Manifest change")[1]
    assert "ROUTE" in docs["plan: manifest text"].split("### Actions")[1]  # descriptions
    live = docs["plan: live text"]
    assert "aws\\_s3\\_bucket.v2" in live and "FG008" in live  # Terraform address
    assert "trust:v2" in live  # names in the registry / admin API, as unmanaged
    assert "ROUTE" in docs["drift: live text"] and "ROUTE" in docs["observed: live text"]
    assert "FG011" in docs["plan: registry evidence"]


@pytest.mark.parametrize("payload", PAYLOADS, ids=range(len(PAYLOADS)))
def test_text_output_strips_control_characters_from_data(payload: str) -> None:
    base, head = _manifest_with(payload)
    live, options = _live_with(payload, base)
    for out in (render_plan(plan(head, observed_matching(base)), "text",
                            manifest_change=manifest_change(base, head)),
                render_plan(plan(base, live, options), "text"),
                render_drift(drift_report(base, live), "text"),
                render_observed(live, "text")):
        check_text(out)
        assert "\x1b[2J" not in out


# --- the workflow scripts ----------------------------------------------------------------------

SCRIPTS = Path(__file__).resolve().parents[2] / ".github" / "scripts"


def _script(name: str) -> ModuleType:
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    import importlib

    return importlib.import_module(name)


def test_what_the_scripts_add_cannot_be_restructured() -> None:
    plan_comment, drift_issue = _script("plan_comment"), _script("drift_issue")
    body = _renders(ISSUE_EXAMPLE)[0][1]
    url = "https://github.com/o/r/actions/runs/1"
    hostile_url = "https://x.example/a) [PWN](https://evil.example) @team <img src=x>"
    comment = plan_comment.compose_body("prod", body, 2, url, artifact=ISSUE_EXAMPLE)
    check(comment, links=frozenset({url}))
    assert comment.startswith("<!-- flipgitops-plan:prod -->\n### flipgitops plan · `prod` ·")
    hostile = plan_comment.compose_body("prod", body, 2, hostile_url, artifact="a`b")
    check(hostile, links=frozenset({plan_comment.link("x", hostile_url)[4:-1]}))
    assert "javascript" not in plan_comment.compose_body("prod", "x", 2, "javascript:alert(1)")
    issue = drift_issue.compose_body("prod", _renders(ISSUE_EXAMPLE)[1][1], url)
    check(issue, links=frozenset({url}))
    for bad in ("prod -->", "prod\n# PWN", "pr@d", "prod`"):
        with pytest.raises(ValueError, match="--env must match"):
            plan_comment.marker(bad)
        with pytest.raises(ValueError, match="--env must match"):
            drift_issue.title(bad)


def test_scripts_cut_long_bodies_without_leaving_a_fence_or_details_open() -> None:
    plan_comment, drift_issue = _script("plan_comment"), _script("drift_issue")
    block = "<details><summary>Trust_1</summary>\n\n" + "\n".join(
        f"- `~` item {i}" for i in range(40)) + "\n\n</details>\n"
    fenced = "```diff\n" + "\n".join(f"+ line {i}" for i in range(40)) + "\n```\n"
    body = "## flipgitops plan: `prod`\n\n" + (block + "\n" + fenced + "\n") * 400
    for composed in (plan_comment.compose_body("prod", body, 2, "https://r.example/1", "a"),
                     drift_issue.compose_body("prod", body, "https://r.example/1")):
        assert len(composed) <= 65_000 and "truncated" in composed
        check(composed, links=frozenset({"https://r.example/1"}))
        assert composed.rstrip().endswith(("(https://r.example/1)", "(https://r.example/1)."))
    # an unbalanced body (a crashed run's partial output) is closed before the footer
    partial = plan_comment.compose_body("prod", "## x\n\n```diff\n+ a", 1, "https://r.example/1")
    check(partial, links=frozenset({"https://r.example/1"}))


def test_script_errors_cannot_inject_workflow_commands(tmp_path: Path) -> None:
    report = tmp_path / "r.md"
    report.write_text("x")
    proc = subprocess.run(
        [sys.executable, "-S", str(SCRIPTS / "drift_issue.py"), "--env", "prod\n::warning::PWN",
         "--exit-code", "2", "--report", str(report)],
        capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 1
    assert proc.stderr.startswith("::error::--env must match") and proc.stderr.count("\n") == 1
    gh_markdown: Any = _script("gh_markdown")
    assert gh_markdown.command_data("a\r\nb%") == "a%0D%0Ab%25"
