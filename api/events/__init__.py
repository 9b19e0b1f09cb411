"""The application event socket, /ws/events/ (docs/api.md, "Event socket").

- protocol: the client's messages, checked; the subscription and the events it selects (pure);
- records: what one committed block holds for the socket, read from the database;
- feed: one listener per process on the engine's block.committed group, shared by the sockets;
- flow: the socket's transport backpressure (daphne/Twisted) as an asyncio event;
- consumer: the socket itself (token, subscribe, replay then live, bounded queue).
"""
