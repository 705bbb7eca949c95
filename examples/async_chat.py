"""The basic request of ``chat_basic.py`` with the async client (:mod:`inference.aio`).

The async client has the same constructor and methods as the sync one; ``complete`` is awaited.
Use it as an async context manager so that its connections are closed at the end.
"""

import asyncio
import os

from azure.core.credentials import AzureKeyCredential

from inference.aio import ChatCompletionsClient
from inference.models import SystemMessage, UserMessage


async def main() -> None:
    """Ask one question and print the answer and the token usage."""
    async with ChatCompletionsClient(
        endpoint=os.environ["AZURE_INFERENCE_ENDPOINT"],
        credential=AzureKeyCredential(os.environ["AZURE_INFERENCE_CREDENTIAL"]),
        model="mistral-large-2407",
    ) as client:
        response = await client.complete(
            messages=[
                SystemMessage(content="You are a helpful assistant."),
                UserMessage(content="How many languages are in the world?"),
            ],
        )

    print("Response:", response.choices[0].message.content)
    print("Model:", response.model)
    if response.usage is not None:
        print("Usage:")
        print("\tPrompt tokens:", response.usage.prompt_tokens)
        print("\tTotal tokens:", response.usage.total_tokens)
        print("\tCompletion tokens:", response.usage.completion_tokens)


if __name__ == "__main__":
    asyncio.run(main())
