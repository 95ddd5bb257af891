"""The confirmation flow shared by the guarded tools (empty_dataset, delete_all, forget, prune).

Elicitation goes through a resolver (`Resolve(...)` returning `Elicit(...)`), which the SDK carries on
both protocol versions. The resolver asks only when the client declared form elicitation; otherwise the
tool answers with the preview and a token. The question shows the plan's counts and fingerprint, so an
answer counts only for the plan it was given for, and the plan is checked again before anything goes.
"""

from typing import Any

from mcp.server.mcpserver import Context, Elicit
from mcp.server.mcpserver.resolve import AcceptedElicitation, ElicitationResult
from memsweep.errors import PruneDisabled
from memsweep.results import DeletionReport
from memsweep.server.app import caller, progress_of, state
from memsweep.server.guard import args_key
from memsweep.storage.report import build_report, describe
from memsweep.storage.targets import Plan, PlanChanged, Target
from pydantic import BaseModel, Field

SKIP = "no-question"


class ConfirmDeletion(BaseModel):
    confirm: bool = Field(description="true to delete exactly what the message lists; false keeps everything.")


def _elicitation_supported(ctx: Context) -> bool:
    caps = ctx.client_capabilities
    el = caps.elicitation if caps is not None else None
    return el is not None and (el.form is not None or el.url is None)


def prune_disabled_message() -> str:
    return (
        "Prune is disabled on this server: it bypasses permissions and wipes whole layers, so the operator "
        "must enable it (MEMSWEEP_ALLOW_PRUNE=1 or `memsweep serve --allow-prune`)."
    )


def _prune_off(ctx: Context, kind: str) -> bool:
    return kind == "prune" and not state(ctx).settings.allow_prune


def ask(ctx: Context, plan: Plan, dry_run: bool, confirm_token: str | None) -> Elicit[ConfirmDeletion] | str:
    """The resolver body: ask the person, or not (token path, dry run, empty plan, disabled prune)."""
    if dry_run or confirm_token or plan.empty or not _elicitation_supported(ctx):
        return SKIP
    if _prune_off(ctx, plan.op):
        return SKIP
    message = f"Delete {describe(plan)} This cannot be undone. (plan {plan.fingerprint[:12]})"
    return Elicit(message, ConfirmDeletion)


async def run_guarded(
    ctx: Context,
    tool: str,
    target: Target,
    plan: Plan,
    answer: ElicitationResult[ConfirmDeletion],
    *,
    dry_run: bool,
    confirm_token: str | None,
    erase: bool,
    binding: dict[str, Any],
) -> DeletionReport:
    st = state(ctx)
    user = caller(ctx)
    memory = (await st.memory()).as_user(user, remote=st.require_token)
    key = args_key(tool=tool, erase=erase, **binding)
    prune_off = _prune_off(ctx, target.kind)

    async def preview(p: Plan, message: str, *, token: bool = True) -> DeletionReport:
        if p.empty or not token:
            return build_report(p, dry_run=dry_run, executed=False, message=message)
        tok, expires = await st.guard.issue(memory.engine.meta, user, tool, key, p.fingerprint)
        return build_report(
            p, dry_run=dry_run, executed=False, message=message,
            confirmation_required=True, confirm_token=tok, expires_at=expires,
        )  # fmt: skip

    if dry_run:
        if prune_off:
            return await preview(plan, f"Would delete {describe(plan)} {prune_disabled_message()}", token=False)
        tail = " To run it, call again with the same arguments, dry_run=false and confirm_token."
        return await preview(
            plan, ("Would delete " + describe(plan) + tail) if not plan.empty else "Nothing to delete."
        )
    if prune_off:
        raise PruneDisabled(
            "the operator has not enabled it on this server (it bypasses permissions and wipes whole layers). "
            "Nothing was deleted; a dry run still shows the plan. The operator can enable it with "
            "MEMSWEEP_ALLOW_PRUNE=1 or `memsweep serve --allow-prune`."
        )

    async def execute(fingerprint: str | None) -> DeletionReport:
        try:
            return await memory.run(target, erase=erase, expected_fingerprint=fingerprint, progress=progress_of(ctx))
        except PlanChanged as changed:
            return await preview(
                changed.plan,
                "The data changed since the preview, so nothing was deleted. This is the new plan: would delete "
                + describe(changed.plan),
            )

    if confirm_token:
        # Single use, enforced in the store: spent by this call whether it runs or finds a new plan.
        bound = await st.guard.spend(memory.engine.meta, confirm_token, user, tool, key)
        return await execute(bound.fingerprint)
    if plan.empty:
        return await execute(plan.fingerprint)
    if isinstance(answer, AcceptedElicitation) and answer.data == SKIP:
        return await preview(
            plan,
            "Confirmation required: would delete " + describe(plan) + " Nothing was deleted yet. To proceed, "
            "call again with the same arguments and confirm_token.",
        )
    if isinstance(answer, AcceptedElicitation) and isinstance(answer.data, ConfirmDeletion) and answer.data.confirm:
        return await execute(plan.fingerprint)
    action = getattr(answer, "action", "decline")
    verdict = "did not confirm" if action == "accept" else f"{action}d" if action == "decline" else "cancelled"
    return build_report(plan, dry_run=False, executed=False, message=f"You {verdict}; nothing was deleted.")
