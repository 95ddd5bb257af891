"""The confirmation flow shared by the guarded tools (empty_dataset, delete_all, forget, prune).

Elicitation goes through a resolver (`Resolve(...)` returning `Elicit(...)`), which the SDK carries on
both protocol versions. The resolver asks only when the client declared form elicitation; otherwise the
tool answers with the preview and a token. The question shows the plan's counts and fingerprint, so an
answer counts only for the plan it was given for, and the plan is checked again before anything goes.
"""

from collections.abc import Awaitable, Callable
from inspect import Parameter, Signature
from typing import Annotated, Any

from mcp.server.mcpserver import Context, Elicit, Resolve
from mcp.server.mcpserver.resolve import AcceptedElicitation, ElicitationResult
from memsweep.errors import PruneDisabled
from memsweep.results import DeletionReport
from memsweep.server.guard import args_key
from memsweep.server.state import caller, progress_of, state, tool_memory
from memsweep.storage.deletion.report import build_report, describe
from memsweep.storage.deletion.targets import Plan, PlanChanged, Target
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


def guarded_resolvers(
    target_args: tuple[str, ...],
    target_of: Callable[..., Target | None],
    *,
    asks: Callable[..., bool] = lambda **_args: True,
) -> tuple[Callable[..., Awaitable[Plan]], Callable[..., Elicit[ConfirmDeletion] | str]]:
    """The plan resolver and the ask resolver of a guarded tool, from the names of the tool arguments that
    make its target and the function that makes it (`asks`: whether these arguments need a confirmation at
    all, e.g. forget of one item does not). The SDK binds resolver parameters to tool arguments by name, so
    the two functions get signatures naming exactly those arguments; adding a guarded tool is then one
    line here and the tool itself."""
    ctx_param = Parameter("ctx", Parameter.POSITIONAL_OR_KEYWORD, annotation=Context)
    named = [Parameter(n, Parameter.KEYWORD_ONLY) for n in target_args]

    async def plan(ctx: Context, **args: Any) -> Plan:
        from memsweep.errors import MemsweepError
        from memsweep.server.errors import tool_error

        try:
            target = target_of(**args)
            if target is None:  # a call that deletes nothing (forget with query): no plan to compute
                return Plan(op="none")
            return await (await tool_memory(ctx)).plan(target)
        except MemsweepError as exc:
            raise tool_error(exc) from exc

    setattr(plan, "__signature__", Signature([ctx_param, *named], return_annotation=Plan))  # noqa: B010
    plan.__annotations__ = {"ctx": Context, "return": Plan}

    def ask_resolver(**kwargs: Any) -> Elicit[ConfirmDeletion] | str:
        ctx, plan_ = kwargs.pop("ctx"), kwargs.pop("plan")
        dry_run, confirm_token = kwargs.pop("dry_run"), kwargs.pop("confirm_token")
        return ask(ctx, plan_, dry_run, confirm_token) if asks(**kwargs) else SKIP

    planned = Annotated[Plan, Resolve(plan)]
    ask_signature = Signature(
        [
            ctx_param,
            Parameter("dry_run", Parameter.KEYWORD_ONLY, annotation=bool),
            Parameter("confirm_token", Parameter.KEYWORD_ONLY, annotation=str | None),
            Parameter("plan", Parameter.KEYWORD_ONLY, annotation=planned),
            *named,
        ]
    )
    setattr(ask_resolver, "__signature__", ask_signature)  # noqa: B010
    ask_resolver.__annotations__ = {"ctx": Context, "plan": planned, "return": Elicit[ConfirmDeletion] | str}
    return plan, ask_resolver


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
    verify: bool = False,
) -> DeletionReport:
    st = state(ctx)
    user = caller(ctx)
    memory = await tool_memory(ctx)
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
            return await memory.run(
                target, erase=erase, expected_fingerprint=fingerprint, progress=progress_of(ctx), verify=verify
            )
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
    if isinstance(answer, AcceptedElicitation) and isinstance(answer.data, str):  # the resolver asked nothing
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
