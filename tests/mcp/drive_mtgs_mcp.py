"""Drives an MCP server with the official Python SDK's client (a client mtgs did not
write), over stdio or Streamable HTTP: initialize, tools/list, then each call given as
NAME=JSON arguments. Prints one JSON document: the server's info, its tools, and each
call's result.

    python drive_mtgs_mcp.py COMMAND [ARG...] -- NAME='{"json": "arguments"}' ...
    python drive_mtgs_mcp.py http://HOST:PORT/mcp -- ...   (bearer token from $MTGS_TOKEN)
"""

import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


async def main():
    split = sys.argv.index("--")
    command, args, calls = sys.argv[1], sys.argv[2:split], sys.argv[split + 1 :]
    if command.startswith("http://") or command.startswith("https://"):
        headers = {"Authorization": "Bearer " + os.environ["MTGS_TOKEN"]} if os.environ.get("MTGS_TOKEN") else {}
        transport = streamable_http_client(command, http_client=create_mcp_http_client(headers=headers))
    else:
        transport = stdio_client(StdioServerParameters(command=command, args=args))
    async with transport as streams:
        read, write = streams[0], streams[1]
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            tools = (await session.list_tools()).tools
            results = []
            for call in calls:
                name, arguments = call.split("=", 1)
                result = await session.call_tool(name, json.loads(arguments))
                results.append({
                    "name": name,
                    "is_error": bool(result.is_error),
                    "structured": result.structured_content,
                    "text": [block.text for block in result.content if getattr(block, "text", None) is not None],
                })
            print(json.dumps({
                "server": {"name": init.server_info.name, "version": init.server_info.version},
                "protocol": str(init.protocol_version),
                "tools": [{"name": t.name, "description": t.description, "input_schema": t.input_schema} for t in tools],
                "calls": results,
            }))


asyncio.run(main())
