"""The Python port of the reference (PyPI resumable-stream 0.2.0) behind Starlette, with the routes
of this service that the benchmark uses, framed as this service frames them:

  POST /streams/{id}           {"source":"demo","parameters":{"count","tokenSize"}} -> SSE
  POST /streams/{id}/ingest    the (chunked) request body becomes the stream; 201 at its end
  GET  /streams/{id}?resumeAt  SSE from the offset; 404 unknown, 422 done
  GET  /streams/{id}/status    {"state": "live" | "finished"}; 404 unknown

Run: REDIS_URL=redis://127.0.0.1:PORT uvicorn pyport_app:app --port N
"""

import contextlib
import json
import os

from resumable_stream import RedisPublisher, RedisSubscriber, create_resumable_stream_context
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

# redis-py's asyncio pool allows 100 connections by default, and a command that finds none free
# fails at once ("Too many connections"): with 200 concurrent creates half of them get a 500.
# The benchmark gives the pool room for the largest scenario.
REDIS_URL = os.environ["REDIS_URL"] + "?max_connections=4000"
state = {}


@contextlib.asynccontextmanager
async def lifespan(app):
    publisher = RedisPublisher(REDIS_URL)
    subscriber = RedisSubscriber(REDIS_URL)
    await publisher.connect()
    await subscriber.connect()
    state["context"] = create_resumable_stream_context(
        key_prefix="py-resumable-stream", publisher=publisher, subscriber=subscriber
    )
    yield


def token(index, size):
    """Token `index` (from 1) of this service's demo source with a tokenSize."""
    return chr(ord("a") + index % 26) * (size - 1) + " "


async def demo(count, size):
    for index in range(1, count + 1):
        yield token(index, size)


def sse(chunks, start):
    """This service's framing: retry, one event per chunk with the offset after it, an end event."""

    async def body():
        offset = start
        yield "retry: 1000\n\n"
        async for chunk in chunks:
            offset += len(chunk)
            yield f"id: {offset}\ndata: {chunk}\n\n"
        yield 'event: end\ndata: {"offset":%d,"status":"completed"}\n\n' % offset

    return StreamingResponse(
        body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


def error(status, code):
    return JSONResponse({"error": code, "message": code}, status_code=status)


async def create(request):
    stream_id = request.path_params["id"]
    parameters = json.loads(await request.body()).get("parameters", {})
    context = state["context"]
    if await context.has_existing_stream(stream_id) is not None:
        return error(409, "exists")
    count, size = int(parameters.get("count", 10)), int(parameters.get("tokenSize", 16))
    chunks = await context.create_new_resumable_stream(stream_id, lambda: demo(count, size))
    return sse(chunks, 0)


async def ingest(request):
    stream_id = request.path_params["id"]
    context = state["context"]
    if await context.has_existing_stream(stream_id) is not None:
        return error(409, "exists")

    async def body():
        async for piece in request.stream():
            if piece:
                yield piece.decode()

    reader = await context.create_new_resumable_stream(stream_id, body)
    length = 0
    async for chunk in reader:
        length += len(chunk)
    return JSONResponse({"id": stream_id, "length": length, "state": "completed"}, status_code=201)


async def resume(request):
    stream_id = request.path_params["id"]
    offset = int(request.query_params.get("resumeAt", "0"))
    chunks = await state["context"].resume_existing_stream(stream_id, skip_characters=offset)
    if chunks == "NOT_FOUND":
        return error(404, "not_found")
    if chunks is None:
        return error(422, "already_done")
    return sse(chunks, offset)


async def status(request):
    value = await state["context"].has_existing_stream(request.path_params["id"])
    if value is None:
        return error(404, "not_found")
    return JSONResponse({"state": "finished" if value == "DONE" else "live"})


async def healthz(request):
    return Response("ok")


app = Starlette(
    routes=[
        Route("/streams/{id}", create, methods=["POST"]),
        Route("/streams/{id}/ingest", ingest, methods=["POST"]),
        Route("/streams/{id}", resume, methods=["GET"]),
        Route("/streams/{id}/status", status, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ],
    lifespan=lifespan,
)
