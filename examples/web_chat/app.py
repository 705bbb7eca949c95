"""A streaming chat page: aiohttp.web relays the model's tokens to the browser as they arrive.

Run it::

    python examples/web_chat/app.py                 # http://127.0.0.1:8080, built-in emulator
    AZURE_INFERENCE_ENDPOINT=https://<resource>.services.ai.azure.com/models \\
    AZURE_INFERENCE_CREDENTIAL=<key> python examples/web_chat/app.py --model <name> --port 8080

One page (inline HTML and JavaScript: no build step, nothing from a CDN) posts the
conversation to ``/api/chat``, which answers with server-sent events read through a streamed
``fetch``: ``delta`` events carry text, ``done`` carries the finish reason and the token usage,
``error`` carries a message. The Stop button aborts the fetch; the browser closes the
connection, the handler is cancelled, and leaving ``async with stream`` closes the upstream
request at once (its connection is not kept busy). Like the command line, a stopped answer
stays in the conversation as far as it was shown.

The page holds the conversation; the server keeps no state besides one
:class:`inference.aio.ChatCompletionsClient` (one connection pool for all requests). It
listens on 127.0.0.1 by default: anyone who can reach the port can use your key.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import json
import os
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from inference.aio import ChatCompletionsClient
from inference.exceptions import InferenceError
from inference.models import AssistantMessage, ChatRequestMessage, SystemMessage, UserMessage
from inference.testing import Emulator, EmulatorOptions

__all__ = ["CLIENT", "EMULATOR", "create_app", "main"]

#: The app's chat client (created at startup, closed at cleanup).
CLIENT = web.AppKey("client", ChatCompletionsClient)
#: The built-in emulator, when the app started one (no endpoint given).
EMULATOR = web.AppKey("emulator", Emulator)

_SETTINGS = web.AppKey("settings", dict[str, Any])
_MAX_MESSAGES = 200
_MAX_MESSAGE_CHARS = 100_000
_ROLES = {"user": UserMessage, "assistant": AssistantMessage, "system": SystemMessage}


def create_app(
    endpoint: str | None = None,
    credential: str | None = None,
    *,
    model: str | None = None,
    emulator_options: EmulatorOptions | None = None,
) -> web.Application:
    """The chat application.

    ``endpoint`` and ``credential`` (a key) name the chat-completions endpoint; without
    ``endpoint`` the app starts a built-in :class:`~inference.testing.Emulator` on startup
    (with ``emulator_options``, by default a small delay per token so streaming shows).
    ``model`` is sent with every request. The client is at ``app[CLIENT]``, the built-in
    emulator (if any) at ``app[EMULATOR]``.
    """
    app = web.Application()
    app[_SETTINGS] = {
        "endpoint": endpoint,
        "credential": credential,
        "model": model,
        "emulator_options": emulator_options,
    }
    app.cleanup_ctx.append(_client_context)
    app.router.add_get("/", _index)
    app.router.add_post("/api/chat", _chat)
    return app


async def _client_context(app: web.Application) -> AsyncIterator[None]:
    settings = app[_SETTINGS]
    endpoint: str | None = settings["endpoint"]
    emulator: Emulator | None = None
    if endpoint is None:
        options = settings["emulator_options"] or EmulatorOptions(token_delay=0.03)
        emulator = Emulator(options)
        await emulator.start()
        app[EMULATOR] = emulator
        endpoint = emulator.endpoint()
    client = ChatCompletionsClient(endpoint, settings["credential"], model=settings["model"])
    app[CLIENT] = client
    try:
        yield
    finally:
        await client.close()
        if emulator is not None:
            await emulator.stop()


# ------------------------------------------------------------------------------ handlers


async def _index(request: web.Request) -> web.Response:
    app = request.app
    if EMULATOR in app:
        where = f"built-in emulator ({app[EMULATOR].endpoint()})"
    else:
        where = app[CLIENT].endpoint.base_url
    model = app[_SETTINGS]["model"] or "default model"
    page = _PAGE.replace("{{ENDPOINT}}", html.escape(where)).replace(
        "{{MODEL}}", html.escape(model)
    )
    return web.Response(text=page, content_type="text/html", charset="utf-8")


def _messages_from(payload: Any) -> list[ChatRequestMessage]:
    """The conversation posted by the page, checked; raises ValueError when malformed."""
    items = payload.get("messages") if isinstance(payload, dict) else None
    if not isinstance(items, list) or not items or len(items) > _MAX_MESSAGES:
        raise ValueError(f"'messages' must be a list of 1 to {_MAX_MESSAGES} messages")
    messages: list[ChatRequestMessage] = []
    for index, item in enumerate(items):
        role = item.get("role") if isinstance(item, dict) else None
        content = item.get("content") if isinstance(item, dict) else None
        if role not in _ROLES or not isinstance(content, str):
            raise ValueError(f"messages[{index}] needs a role (user, assistant, system) and text")
        if len(content) > _MAX_MESSAGE_CHARS:
            raise ValueError(f"messages[{index}] is longer than {_MAX_MESSAGE_CHARS} characters")
        messages.append(_ROLES[role](content))
    if not isinstance(messages[-1], UserMessage):
        raise ValueError("the last message must be the user's")
    return messages


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


async def _chat(request: web.Request) -> web.StreamResponse:
    try:
        messages = _messages_from(await request.json())
    except ValueError as exc:  # includes a body that is not JSON
        return web.json_response({"error": str(exc)}, status=400)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    client = request.app[CLIENT]
    try:
        stream = await client.complete(
            messages=messages, stream=True, stream_options={"include_usage": True}
        )
        # Leaving this block for any reason (the end, an error, the browser going away and
        # the handler being cancelled) closes the upstream request.
        async with stream:
            finish_reason = None
            async for update in stream:
                text = ""
                for choice in update.choices:
                    if choice.index == 0:
                        text += choice.delta.content or ""
                        finish_reason = choice.finish_reason or finish_reason
                if text:
                    await response.write(_event("delta", {"text": text}))
            usage = stream.get_final_completion().usage
        await response.write(
            _event(
                "done",
                {
                    "finish_reason": str(finish_reason) if finish_reason else None,
                    "usage": usage.as_dict() if usage is not None else None,
                },
            )
        )
    except InferenceError as exc:
        with contextlib.suppress(ConnectionResetError):
            await response.write(_event("error", {"message": str(exc)}))
    except ConnectionResetError:
        pass  # the browser went away (Stop): the stream is already closed
    return response


# ------------------------------------------------------------------------------ the page

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>inference chat</title>
<link rel="icon" href="data:,">
<style>
  :root { --accent: #2563eb; --bg: #f5f6f8; --line: #d9dde3; --muted: #667085; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif;
         background: var(--bg); color: #1d2433; display: flex; flex-direction: column;
         height: 100vh; }
  header { padding: 12px 20px; background: #111827; color: #f9fafb; display: flex;
           align-items: baseline; gap: 16px; flex-wrap: wrap; }
  header h1 { font-size: 17px; margin: 0; font-weight: 600; }
  header .where { font-size: 13px; color: #aab2c0; }
  #log { flex: 1; overflow-y: auto; padding: 20px; display: flex; flex-direction: column;
         gap: 12px; }
  .msg { max-width: 46rem; padding: 10px 14px; border-radius: 12px; white-space: pre-wrap;
         word-wrap: break-word; box-shadow: 0 1px 2px rgb(0 0 0 / 6%); }
  .msg.user { align-self: flex-end; background: var(--accent); color: #fff; }
  .msg.assistant { align-self: flex-start; background: #fff; border: 1px solid var(--line); }
  .msg.assistant[data-state="streaming"] .text::after { content: "\\258D"; color: var(--accent);
         animation: blink 1s steps(1) infinite; }
  .msg.assistant[data-state="error"] { border-color: #dc2626; color: #991b1b; }
  .meta { margin-top: 6px; font-size: 12px; color: var(--muted); white-space: normal; }
  .msg[data-state="stopped"] .meta { color: #b45309; }
  @keyframes blink { 50% { opacity: 0; } }
  form { display: flex; gap: 8px; padding: 12px 20px; background: #fff;
         border-top: 1px solid var(--line); }
  textarea { flex: 1; resize: none; height: 44px; padding: 10px 12px; font: inherit;
             border: 1px solid var(--line); border-radius: 10px; }
  textarea:focus { outline: 2px solid var(--accent); border-color: transparent; }
  button { padding: 0 18px; font: inherit; font-weight: 600; border-radius: 10px;
           border: 1px solid transparent; cursor: pointer; }
  #send { background: var(--accent); color: #fff; }
  #stop { background: #fff; color: #b91c1c; border-color: #fca5a5; }
  button:disabled { opacity: .45; cursor: default; }
  #status { padding: 4px 20px 10px; background: #fff; font-size: 12px; color: var(--muted); }
</style>
</head>
<body>
<header>
  <h1>inference chat</h1>
  <span class="where">{{MODEL}} &middot; {{ENDPOINT}}</span>
</header>
<main id="log" aria-live="polite"></main>
<form id="composer">
  <textarea id="prompt" placeholder="Ask something (Enter sends, Shift+Enter: new line)"
            aria-label="Prompt" autofocus></textarea>
  <button id="send" type="submit">Send</button>
  <button id="stop" type="button" disabled>Stop</button>
</form>
<div id="status" role="status">Ready.</div>
<script>
"use strict";
const log = document.getElementById("log");
const form = document.getElementById("composer");
const prompt = document.getElementById("prompt");
const sendButton = document.getElementById("send");
const stopButton = document.getElementById("stop");
const statusLine = document.getElementById("status");
const history = [];          // the conversation sent with every request
let controller = null;       // AbortController of the answer being streamed

function addMessage(role, text) {
  const box = document.createElement("div");
  box.className = "msg " + role;
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  box.appendChild(body);
  log.appendChild(box);
  log.scrollTop = log.scrollHeight;
  return box;
}

function setMeta(box, text) {
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = text;
  box.appendChild(meta);
}

function setBusy(busy) {
  sendButton.disabled = busy;
  stopButton.disabled = !busy;
}

// Splits complete server-sent events off the buffer; returns [events, rest].
function takeEvents(buffer) {
  const events = [];
  let end;
  while ((end = buffer.indexOf("\\n\\n")) >= 0) {
    const block = buffer.slice(0, end);
    buffer = buffer.slice(end + 2);
    let name = "message";
    const data = [];
    for (const line of block.split("\\n")) {
      if (line.startsWith("event: ")) name = line.slice(7);
      else if (line.startsWith("data: ")) data.push(line.slice(6));
    }
    if (data.length) events.push({name, data: JSON.parse(data.join("\\n"))});
  }
  return [events, buffer];
}

function describeUsage(usage) {
  if (!usage) return "The service reported no token usage.";
  return "Tokens: " + usage.prompt_tokens + " prompt \\u00b7 " + usage.completion_tokens +
         " completion \\u00b7 " + usage.total_tokens + " total";
}

async function ask(question) {
  history.push({role: "user", content: question});
  addMessage("user", question);
  const box = addMessage("assistant", "");
  const body = box.querySelector(".text");
  box.dataset.state = "streaming";
  statusLine.textContent = "Streaming\\u2026";
  controller = new AbortController();
  setBusy(true);
  let answer = "";
  try {
    const response = await fetch("/api/chat", {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({messages: history}),
      signal: controller.signal,
    });
    if (!response.ok) throw new Error((await response.json()).error || response.statusText);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      let events;
      [events, buffer] = takeEvents(buffer + decoder.decode(value, {stream: true}));
      let added = "";   // one paint per network read, however many events it held
      for (const event of events) {
        if (event.name === "delta") {
          added += event.data.text;
        } else if (event.name === "done") {
          box.dataset.state = "done";
          let note = describeUsage(event.data.usage);
          if (event.data.finish_reason === "length") note += " (cut at the token limit)";
          setMeta(box, note);
          box.querySelector(".meta").classList.add("usage");
          statusLine.textContent = "Done.";
        } else if (event.name === "error") {
          throw new Error(event.data.message);
        }
      }
      if (added) {
        answer += added;
        body.textContent = answer;
        log.scrollTop = log.scrollHeight;
      }
    }
    if (box.dataset.state === "streaming") throw new Error("the answer ended early");
  } catch (error) {
    if (error.name === "AbortError") {
      box.dataset.state = "stopped";
      setMeta(box, "Stopped: the request was cancelled.");
      statusLine.textContent = "Stopped.";
    } else {
      box.dataset.state = "error";
      setMeta(box, "Error: " + error.message);
      statusLine.textContent = "Error.";
    }
  } finally {
    controller = null;
    setBusy(false);
    // What was shown stays in the conversation; a turn with no answer at all is dropped.
    if (answer) history.push({role: "assistant", content: answer});
    else history.pop();
    prompt.focus();
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const question = prompt.value.trim();
  if (!question || controller) return;
  prompt.value = "";
  ask(question);
});
prompt.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    form.requestSubmit();
  }
});
stopButton.addEventListener("click", () => { if (controller) controller.abort(); });
</script>
</body>
</html>
"""


# ------------------------------------------------------------------------------ command line


def main(argv: list[str] | None = None) -> None:
    """Serve the page: ``python examples/web_chat/app.py [--host H] [--port P] [--model M]``."""
    parser = argparse.ArgumentParser(description="A streaming chat page for inference.")
    parser.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    parser.add_argument("--model", help="the model (or deployment) name")
    parser.add_argument(
        "--token-delay",
        type=float,
        default=0.03,
        help="built-in emulator only: seconds per streamed token (default: 0.03)",
    )
    args = parser.parse_args(argv)
    endpoint = os.environ.get("AZURE_INFERENCE_ENDPOINT") or None
    key = os.environ.get("AZURE_INFERENCE_CREDENTIAL") or None
    app = create_app(
        endpoint,
        key,
        model=args.model,
        emulator_options=EmulatorOptions(token_delay=args.token_delay),
    )
    where = endpoint or "the built-in emulator (set AZURE_INFERENCE_ENDPOINT for a real one)"
    ready = f"chat page on http://{args.host}:{args.port}/ - answering: {where}; Ctrl-C stops"
    try:
        web.run_app(
            app,
            host=args.host,
            port=args.port,
            handler_cancellation=True,  # Stop in the page cancels the handler at once
            print=lambda _: print(ready, flush=True),
        )
    except OSError as exc:
        raise SystemExit(
            f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}"
        ) from None


if __name__ == "__main__":
    main()
