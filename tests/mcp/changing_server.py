"""A real MCP server (the official Python SDK's low-level server, over stdio) whose tools
are read from a JSON file on every tools/list: the tests edit the file between two syncs
to add, remove and change tools. Pages of PAGE tools, so clients must follow cursors.

    python changing_server.py TOOLS.json [PAGE]
"""

import asyncio
import json
import sys

import mcp.server.stdio
import mcp.types as types
from mcp.server.lowlevel import Server

PATH = sys.argv[1]
PAGE = int(sys.argv[2]) if len(sys.argv) > 2 else 100


async def list_tools(ctx, params):
    with open(PATH, encoding="utf-8") as handle:
        tools = json.load(handle)
    start = int(params.cursor) if params is not None and params.cursor else 0
    page = tools[start : start + PAGE]
    next_cursor = str(start + PAGE) if start + PAGE < len(tools) else None
    return types.ListToolsResult(tools=[types.Tool.model_validate(tool) for tool in page], next_cursor=next_cursor)


async def call_tool(ctx, params):
    return types.CallToolResult(content=[types.TextContent(type="text", text="ok")])


server = Server("changing-server", version="1.0.0", on_list_tools=list_tools, on_call_tool=call_tool)


async def main():
    async with mcp.server.stdio.stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


asyncio.run(main())
