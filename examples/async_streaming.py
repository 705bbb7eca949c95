"""Streaming with the async client: print the text as it arrives, then the assembled answer.

``await client.complete(..., stream=True)`` returns an async iterator of updates. Used as an
async context manager, the stream releases its connection even if the loop stops early. Once
the stream has ended, ``stream.get_final_completion()`` returns the whole answer assembled from
the updates, shaped like a non-streamed response. ``stream_options={"include_usage": True}``
asks the service for the token usage in a last update (some services send it anyway).
"""

import asyncio
import os

from azure.core.credentials import AzureKeyCredential

from inference.aio import ChatCompletionsClient
from inference.models import SystemMessage, UserMessage


async def main() -> None:
    """Stream one answer, then print the assembled completion and its usage."""
    async with ChatCompletionsClient(
        endpoint=os.environ["AZURE_INFERENCE_ENDPOINT"],
        credential=AzureKeyCredential(os.environ["AZURE_INFERENCE_CREDENTIAL"]),
        model="mistral-large-2407",
    ) as client:
        stream = await client.complete(
            messages=[
                SystemMessage(content="You are a helpful assistant."),
                UserMessage(content="How many languages are in the world?"),
            ],
            temperature=0,
            top_p=1,
            max_tokens=2048,
            stream=True,
            stream_options={"include_usage": True},
        )
        async with stream:
            async for update in stream:
                if update.choices and update.choices[0].delta.content:
                    print(update.choices[0].delta.content, end="", flush=True)
        print()

        completion = stream.get_final_completion()
        print("Finish reason:", completion.choices[0].finish_reason)
        print("Model:", completion.model)
        if completion.usage is not None:
            print("Usage:")
            print("\tPrompt tokens:", completion.usage.prompt_tokens)
            print("\tTotal tokens:", completion.usage.total_tokens)
            print("\tCompletion tokens:", completion.usage.completion_tokens)


if __name__ == "__main__":
    asyncio.run(main())
