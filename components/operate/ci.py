"""What CI and operators run around the Pulumi program: env layers from templates, the CI env layer, and the
desired-state diff of a change (`diff --against REF`), each a CLI verb the Makefile calls in one line.

One env parser (python-dotenv, as the loader) and one placeholder convention (the loader's
`offline-placeholder-NAME`) serve all three.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from dotenv import dotenv_values, set_key

from components.core.envfiles import placeholder
from components.core.errors import ConfigError, Problem
from components.model.settings import Tier
from components.operate import exits
from components.operate.dataloss import Loss, losses
from components.operate.diff import Change, diff
from components.stack import stackconfig
from components.stack.guards import KEY
from components.stack.loader import PROJECT_DIR, stack_file, stacks

TEMPLATE_SUFFIX = ".example"
CI_LAYER = ".env.local"
CI_MARKER = "# written by `python -m components ci-env`"
PLAN_DIFF_DIR = "out/plan-diff"


def known_stack(stack: str, project_dir: Path = PROJECT_DIR) -> None:
    stackconfig.known_stack(stack, project_dir)  # the loader's: names the stacks there are, and the closest


def templates(stack: str, project_dir: Path = PROJECT_DIR) -> list[Path]:
    return sorted((project_dir / "envfiles" / stack).glob(f"*{TEMPLATE_SUFFIX}"))


def env_layers(stack: str, project_dir: Path = PROJECT_DIR) -> list[Path]:
    """Each committed template copied to its layer's name where that layer is missing; never overwrites."""
    known_stack(stack, project_dir)
    created = []
    for template in templates(stack, project_dir):
        layer = template.with_suffix("")
        if not layer.exists():
            shutil.copyfile(template, layer)
            created.append(layer)
    return created


def template_variables(stack: str, project_dir: Path = PROJECT_DIR) -> dict[str, Optional[str]]:
    """Every variable the stack's templates name, with the template's value (empty: to be supplied)."""
    found: dict[str, Optional[str]] = {}
    for template in templates(stack, project_dir):
        found.update(dotenv_values(template))
    return found


def placeholder_env_dir(stack: str, project_dir: Path, target: Path) -> Path:
    """The stack's layers as templates give them, with the placeholder for every value they leave empty:
    enough to plan without a single secret (plans mask credentials anyway)."""
    target.mkdir(parents=True, exist_ok=True)
    for template in templates(stack, project_dir):
        shutil.copyfile(template, target / template.stem)
    local = target / CI_LAYER
    local.touch()
    for name, value in template_variables(stack, project_dir).items():
        if not value:
            set_key(local, name, placeholder(name), quote_mode="never")
    return target


def ci_env(stack: str, environ: dict[str, str], project_dir: Path = PROJECT_DIR) -> tuple[Path, list[str]]:
    """CI's `.env.local` for `stack`: each variable its templates name, from the job's environment."""
    known_stack(stack, project_dir)
    missing = [] if environ.get("PULUMI_BACKEND_URL") else ["PULUMI_BACKEND_URL"]
    passphrase = environ.get("PULUMI_CONFIG_PASSPHRASE") or environ.get("PULUMI_CONFIG_PASSPHRASE_FILE")
    if stack != Tier.dev.value and not passphrase:
        missing.append("PULUMI_CONFIG_PASSPHRASE")
    if missing:
        raise ConfigError(
            [Problem("environment", name, f"stack {stack} needs this secret (see docs/ci.md)") for name in missing]
        )
    env_layers(stack, project_dir)
    layer = project_dir / "envfiles" / stack / CI_LAYER
    if layer.exists() and layer.read_text().split("\n", 1)[0] != CI_MARKER:
        raise ConfigError(
            [
                Problem(
                    str(layer.relative_to(project_dir)), "", "exists and was not written by ci-env; not overwriting it"
                )
            ]
        )
    written = [name for name in template_variables(stack, project_dir) if environ.get(name)]
    with tempfile.NamedTemporaryFile("w", dir=layer.parent, delete=False, prefix=".ci-env-") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(CI_MARKER + "\n")
    for name in written:
        set_key(handle.name, name, environ[name], quote_mode="always")
    os.replace(handle.name, layer)
    return layer, written


@dataclass(frozen=True)
class StackDiff:
    stack: str
    changes: list[Change]
    note: str = ""  # why the base side is empty, when it is
    tier: str = "dev"  # of the changed (head) plan
    confirmed: frozenset[str] = frozenset()  # its data_loss_confirmations
    losses: tuple[Loss, ...] = ()  # what the changes do to data volumes (components/operate/dataloss.py)

    @classmethod
    def of(cls, stack: str, old: dict, new: dict, note: str = "") -> "StackDiff":
        guards = new.get("guards") or {}
        confirmed = frozenset(guards.get("confirmed", ()))
        changes = diff(old, new)
        return cls(stack, changes, note, guards.get("tier", "dev"), confirmed, tuple(losses(old, new, changes)))

    def summary(self) -> str:
        counts = {action: sum(c.action == action for c in self.changes) for action in Change.ACTIONS}
        return ", ".join(f"{n} to {action}" for action, n in counts.items() if n) or "no changes"

    def data_loss(self) -> list[tuple[Loss, str, bool]]:
        """(loss, the confirmation it needs, whether the stack file has it) of every data volume deleted, detached,
        replaced or moved."""
        return [(loss, loss.need, loss.need in self.confirmed) for loss in self.losses]

    @property
    def refused(self) -> bool:
        """Outside dev, a data loss no confirmation names stops here (exit status 3)."""
        return self.tier != Tier.dev.value and any(not ok for _, _, ok in self.data_loss())

    def data_loss_lines(self) -> list[str]:
        lines = []
        for loss, need, ok in self.data_loss():
            if ok:
                verdict = "confirmed in the stack file"
            elif self.tier == Tier.dev.value:
                verdict = "dev: no confirmation needed"
            else:
                verdict = f'NOT CONFIRMED: add {{change: "{need}", by: <name>, date: <YYYY-MM-DD>}} to {KEY}'
            lines.append(f"DATA LOSS: {loss.explain()} [{verdict}]")
        return lines

    def text(self) -> str:
        """DATA LOSS first, then the summary, as `pulumi preview` leads with it, then one line per change."""
        lines = self.data_loss_lines() + ([f"warning: {self.note}"] if self.note else [])
        return "\n".join(lines + [self.summary()] + [c.line() for c in self.changes])


def plan_json(tree: Path, stack: str, env_dir: Path) -> tuple[Optional[str], str]:
    """`plan --json` of `stack` by the code in `tree` (its own package, templates and catalog); (json, errors)."""
    done = subprocess.run(
        [sys.executable, "-m", "components", "plan", stack, "--json", "--env-dir", str(env_dir)],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        check=False,
    )
    return (done.stdout if done.returncode == 0 else None), done.stderr


DIFF_SCRATCH_PREFIX = "pmoves-diff-"


def diff_against(ref: str, wanted: list[str], project_dir: Path = PROJECT_DIR) -> list[StackDiff]:
    """The desired-state diff of each stack (default: every one) from git ref `ref` to the working tree."""
    if not ref:
        raise ConfigError([Problem("BASE", "", "name the git ref to compare with (make plan-diff BASE=<ref>)")])
    found = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        cwd=project_dir,
        capture_output=True,
        text=True,
    )
    if found.returncode != 0:
        raise ConfigError([Problem(ref, "", "not a commit in this clone (fetch it, or use fetch-depth: 0)")])
    for stack in wanted:
        known_stack(stack, project_dir)
    # Ctrl-C unwinds (exits.unwinding): the base's worktree and the scratch directory go, then the one line.
    with exits.unwinding(), tempfile.TemporaryDirectory(prefix=DIFF_SCRATCH_PREFIX) as scratch:
        base_tree = Path(scratch) / "base"
        try:
            command = ["git", "worktree", "add", "--quiet", "--detach", str(base_tree), found.stdout.strip()]
            subprocess.run(command, cwd=project_dir, check=True)
            return [
                stack_diff(stack, ref, base_tree, project_dir, Path(scratch) / stack)
                for stack in wanted or stacks(project_dir)
            ]
        finally:
            # Also after a Ctrl-C inside `worktree add`, where git may have registered a half-made worktree: its
            # directory goes, then git forgets it. Quietly: after a Ctrl-C, its one line stays the only one.
            quiet = {"cwd": project_dir, "check": False, "capture_output": True}
            subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], **quiet)
            shutil.rmtree(base_tree, ignore_errors=True)
            subprocess.run(["git", "worktree", "prune"], **quiet)


def stack_diff(stack: str, ref: str, base_tree: Path, head_tree: Path, scratch: Path) -> StackDiff:
    """Both sides planned offline, each by its own code, with placeholder credentials; a stack missing at `ref`,
    or whose plan fails there, is diffed against nothing."""
    head, errors = plan_json(head_tree, stack, placeholder_env_dir(stack, head_tree, scratch / "head"))
    if head is None:
        raise ConfigError([Problem(stack_file(stack), "", f"the working tree's plan fails:\n{errors}")])
    base, note = {"resources": []}, ""
    if not (base_tree / stack_file(stack)).is_file():
        note = f"stack {stack} does not exist at {ref}: everything is new"
    else:
        planned, errors = plan_json(base_tree, stack, placeholder_env_dir(stack, base_tree, scratch / "base"))
        if planned is None:
            note = f"the plan of {stack} fails at {ref}: diffed against nothing\n{errors.strip()}"
        else:
            base = json.loads(planned)
    return StackDiff.of(stack, base, json.loads(head), note)


def comment(ref: str, results: list[StackDiff], project_dir: Path = PROJECT_DIR) -> str:
    """Markdown for the pull request and the job summary."""

    def short(rev: str) -> str:
        found = subprocess.run(["git", "rev-parse", "--short", rev], cwd=project_dir, capture_output=True, text=True)
        return found.stdout.strip() or rev

    parts = [
        "## Desired-state diff",
        "",
        "Offline plans (`make plan-diff`) of the base and of this change, compared by pulumi-docker's replacement "
        "rules.",
        "`+` create, `~` update in place, `+-` replace, `-` delete, `>` read an existing resource (adopted, never "
        "created or deleted), `<` stop reading it; credentials are masked, so a changed secret shows only in "
        "`pulumi preview`.",
        "",
    ]
    losses = [(r.stack, line) for r in results for line in r.data_loss_lines()]
    if losses:
        refused = [r.stack for r in results if r.refused]
        parts += ["### DATA LOSS", ""] + [
            f"- **{stack}**: {line.removeprefix('DATA LOSS: ')}" for stack, line in losses
        ]
        if refused:
            parts += ["", f"Refused for {', '.join(refused)}: confirm each in the stack file or change course.", ""]
        else:
            parts.append("")
    commits = f"base `{short(ref)}` → head `{short('HEAD')}`"
    for result in results:
        parts += [f"### `{result.stack}`: {result.summary()}", "", commits, "", "```", result.text(), "```", ""]
    return "\n".join(parts)
