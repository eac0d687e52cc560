"""Chat with Chip: persisted conversations, context building, streaming over WebSocket."""
