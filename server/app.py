"""The app factory: `create_server(settings) -> MCPServer`; its lifespan starts one engine process
(server/engine_process.py) and ends it. The app imports the tools (to register them); the tools import only `server.state`, never this module."""

import inspect
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer
from mcp_types import Icon, ToolAnnotations
from memsweep import __version__
from memsweep.config import Settings
from memsweep.server.engine_process import EngineProcess
from memsweep.server.guard import Guard
from memsweep.server.state import AppState

INSTRUCTIONS = (
    "memsweep stores an agent's memories (add, search) and removes them exactly. Every deleting tool "
    "takes dry_run=true to preview what goes and what stays because other items share it. empty_dataset, "
    "delete_all, forget (of a dataset or everything) and prune ask for confirmation: the person is asked "
    "directly when the client supports it, otherwise the result carries a confirm_token to pass back in "
    "the same call. Deletions erase the bytes from disk unless erase=false. To forget by description, call "
    "forget(query=...) to see candidates (it deletes nothing), then forget(data_ids=[...]) with the ids chosen."
)


class MemsweepServer(MCPServer):
    """MCPServer whose argument errors speak the tool's language (INTERFACE.md, "Errors"): which argument,
    what was wrong, a short prefix of the value; never pydantic's page of text with the whole input. It also
    knows its open lifespan states, so a signal can close the engine (server/stop.py)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.app_states: list[AppState] = []

    def add_tool(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        annotations: ToolAnnotations | None = None,
        icons: list[Icon] | None = None,
        meta: dict[str, Any] | None = None,
        structured_output: bool | None = None,
    ) -> None:
        """Descriptions from docstrings without their source indentation and line wrapping (one paragraph per
        blank-line-separated block): what an agent reads, in fewer tokens."""
        if description is None and fn.__doc__:
            blocks = inspect.cleandoc(fn.__doc__).split("\n\n")
            description = "\n\n".join(" ".join(b.split()) for b in blocks)
        super().add_tool(fn, name, title, description, annotations, icons, meta, structured_output)
        tool = self._tool_manager.get_tool(name or fn.__name__)
        _keep_text_arguments_as_text(tool)
        _compact_schemas(tool)

    async def shutdown(self) -> None:
        """Close every open engine (runs a due erase, releases the data directory); idempotent."""
        for st in list(self.app_states):
            await st.close()

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
        from memsweep.server.errors import arguments_message, surrogate_argument
        from pydantic import ValidationError

        bad = surrogate_argument(arguments)
        if bad is not None:
            raise ToolError(
                f"Invalid input: `{bad}` contains a lone surrogate, which is not valid Unicode text. Nothing was "
                f"changed; send valid UTF-8 text and call {name} again."
            )
        try:
            result = await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc, UnexpectedToolError):
                raise
            if isinstance(exc.__cause__, ValidationError):
                raise ToolError(arguments_message(name, exc.__cause__)) from exc.__cause__
            # Our own errors already start with what went wrong ("Not found: …"); the SDK's
            # "Error executing tool X:" in front of them is noise to the person reading.
            prefix = f"Error executing tool {name}: "
            text = str(exc)
            raise ToolError(text.removeprefix(prefix)) from exc.__cause__
        return _compact_text(result)


def _keep_text_arguments_as_text(tool: Any) -> None:
    """The SDK pre-parses string arguments that look like JSON for every parameter not typed exactly `str`
    (Claude Desktop sends lists as JSON strings). For our optional text parameters that turned the memory
    `null` into None and `{"a": 1}` into a dict, and the add failed (the soak's fuzzer found `text='null'`).
    Keep the pre-parsing for lists and models; a parameter typed `str | None` gets what was sent."""
    metadata = tool.fn_metadata
    text_keys = {
        key
        for name, field in metadata.arg_model.model_fields.items()
        if field.annotation == (str | None)
        for key in (name, field.alias)
        if key
    }
    if not text_keys:
        return
    pre_parse = metadata.pre_parse_json

    def keep_text(data: dict[str, Any]) -> dict[str, Any]:
        parsed: dict[str, Any] = pre_parse(data)
        return {k: (data[k] if k in text_keys else v) for k, v in parsed.items()}

    object.__setattr__(metadata, "pre_parse_json", keep_text)  # an SDK pydantic model: no public hook


def _compact_schemas(tool: Any) -> None:
    """Publish the compact schemas (server/schemas.py); validation still uses the pydantic models."""
    from memsweep.server.schemas import compact

    tool.parameters = compact(tool.parameters, output=False)
    metadata = tool.fn_metadata
    if metadata.output_schema is not None:
        object.__setattr__(metadata, "output_schema", compact(metadata.output_schema, output=True))


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _compact_text(result: Any) -> Any:
    """The text copy of a structured result as compact JSON without its null fields: the SDK indents it,
    which made a default list_data page 38,605 characters instead of 26,000 for the same content, and
    `"expires_at":null` cost 18 more an item. Clients that read text (most agents' models do) get every
    value, in fewer tokens; `structuredContent` keeps every field, nulls included, as its schema says."""
    import json

    from mcp.types import CallToolResult, TextContent

    if isinstance(result, CallToolResult) and result.structured_content is not None and len(result.content) == 1:
        content = _without_nulls(result.structured_content)
        compact = json.dumps(content, separators=(",", ":"), ensure_ascii=False)
        return result.model_copy(update={"content": [TextContent(type="text", text=compact)]})
    return result


def create_server(settings: Settings, *, http_url: str | None = None, engine: EngineProcess | None = None) -> MCPServer:
    """The server; with `http_url` (e.g. "http://127.0.0.1:8765") every HTTP request needs a bearer token.
    `engine`: an engine process already launched (`memsweep serve` launches it first thing)."""

    @asynccontextmanager
    async def lifespan(_app: MCPServer) -> AsyncIterator[AppState]:
        app_state = AppState(
            settings, Guard(settings.token_ttl_seconds), require_token=http_url is not None, engine=engine
        )
        app_state.start_opening()
        server.app_states.append(app_state)
        try:
            yield app_state
        finally:
            # Shielded: a cancelled transport must still finish a due erase and release the directory.
            with anyio.CancelScope(shield=True):
                await app_state.close()
            server.app_states.remove(app_state)

    auth_kwargs: dict[str, Any] = {}
    if http_url is not None:
        from mcp.server.auth.settings import AuthSettings
        from memsweep.server.auth import StoredTokenVerifier
        from pydantic import AnyHttpUrl

        auth_kwargs = {
            "token_verifier": StoredTokenVerifier(settings.data_dir, settings.metadata_url),
            # Our verifier maps each token to its user itself; tokens are not issued for other resources.
            "auth": AuthSettings(
                issuer_url=AnyHttpUrl(http_url),
                resource_server_url=AnyHttpUrl(f"{http_url}/mcp"),
                validate_token_resource=False,
            ),
        }
    server = MemsweepServer(
        "memsweep",
        title="memsweep",
        instructions=INSTRUCTIONS,
        version=__version__,
        lifespan=lifespan,
        log_level="WARNING",
        **auth_kwargs,
    )
    from memsweep.tools import register

    register(server)
    return server
