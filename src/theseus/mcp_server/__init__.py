"""Outside agents drive Theseus over MCP (the Model Context Protocol), with the same guarantees as Chip.

The registry's operations are the tools (generated: name, docstring, argument
schema, hints), the docs and each app's state are resources, and `search`
queries the knowledge index. Every call runs through `Registry.execute` as
actor "agent": validated, logged, undoable, live in every tab; an operation the
approval policy asks about waits for the user's click on a card in the chat
pane. `gateway.py` serves that from a runtime (or forwards it to the data
dir's running server); `server.py` puts it on Streamable HTTP at /mcp and on
stdio (`theseus mcp`).
"""
